package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tandemdb/tandem/failover"
)

// Client calls a running tandem's admin API.
type Client struct {
	// Base is the API's URL, e.g. http://127.0.0.1:9306.
	Base  string
	Token string
	HTTP  *http.Client
}

// ErrUnreachable wraps failures to reach the API at all.
var ErrUnreachable = errors.New("cannot reach tandem's admin API")

// APIError is an error answer from the API.
type APIError struct {
	Code    int
	Message string
	// Report is set when a switchover failed or was rolled back.
	Report *failover.SwitchoverReport
}

func (e *APIError) Error() string { return e.Message }

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body == nil && method == http.MethodPost {
		body = struct{}{} // the API takes only JSON on a POST
	}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.Base, "/")+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Minute}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%w at %s: %v", ErrUnreachable, c.Base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("%w at %s: %v", ErrUnreachable, c.Base, err)
	}
	if resp.StatusCode/100 != 2 {
		var eb struct {
			Error  string                     `json:"error"`
			Report *failover.SwitchoverReport `json:"report"`
		}
		if json.Unmarshal(b, &eb) != nil || eb.Error == "" {
			eb.Error = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
		}
		return &APIError{Code: resp.StatusCode, Message: eb.Error, Report: eb.Report}
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// Status is GET /status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	err := c.do(ctx, http.MethodGet, "/status", nil, &s)
	return s, err
}

// Events is GET /events.
func (c *Client) Events(ctx context.Context) ([]failover.Event, error) {
	var e []failover.Event
	err := c.do(ctx, http.MethodGet, "/events", nil, &e)
	return e, err
}

// Switchover is POST /switchover.
func (c *Client) Switchover(ctx context.Context, r SwitchoverRequest) (failover.SwitchoverReport, error) {
	var rep failover.SwitchoverReport
	err := c.do(ctx, http.MethodPost, "/switchover", r, &rep)
	var ae *APIError
	if errors.As(err, &ae) && ae.Report != nil {
		rep = *ae.Report
	}
	return rep, err
}

// Failover is POST /failover with force and confirm set.
func (c *Client) Failover(ctx context.Context) (failover.Decision, error) {
	var d failover.Decision
	err := c.do(ctx, http.MethodPost, "/failover", FailoverRequest{Force: true, Confirm: true}, &d)
	return d, err
}

// Maintenance is POST /maintenance.
func (c *Client) Maintenance(ctx context.Context, node string, on bool) error {
	return c.do(ctx, http.MethodPost, "/maintenance", MaintenanceRequest{Node: node, On: on}, nil)
}

// Rejoin is POST /rejoin: clear a node's exclusion.
func (c *Client) Rejoin(ctx context.Context, node string) error {
	return c.do(ctx, http.MethodPost, "/rejoin", RejoinRequest{Node: node}, nil)
}

// AbortSwitchover is POST /switchover/abort.
func (c *Client) AbortSwitchover(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/switchover/abort", struct{}{}, nil)
}

// Pause is POST /pause.
func (c *Client) Pause(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/pause", nil, nil)
}

// Resume is POST /resume.
func (c *Client) Resume(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/resume", nil, nil)
}
