package alert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tandemdb/tandem/failover"
)

// TimeFormat is RFC 3339 with milliseconds, always in UTC.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Payload is the JSON body of a FormatJSON webhook and the stdin of a
// command. Every key is always present: "" or 0 when the event has no such
// value, so receivers need no optional fields.
type Payload struct {
	Type       string `json:"type"`        // failover.EventType, e.g. "failover_finished"
	Time       string `json:"time"`        // when it happened, TimeFormat
	Node       string `json:"node"`        // the node concerned
	From       string `json:"from"`        // traffic moved from
	To         string `json:"to"`          // traffic moved to
	Epoch      uint64 `json:"epoch"`       // failover epoch after the event
	Reason     string `json:"reason"`      // why, in words
	DurationMS int64  `json:"duration_ms"` // of the operation that ended, 0 if none
	Tandem     Source `json:"tandem"`
}

// Source names the tandem that raised the event.
type Source struct {
	Version string `json:"version"`
	Host    string `json:"host"`
}

// NewPayload converts e.
func NewPayload(e failover.Event, src Source) Payload {
	return Payload{
		Type:       string(e.Type),
		Time:       e.Time.UTC().Format(TimeFormat),
		Node:       e.Node,
		From:       e.From,
		To:         e.To,
		Epoch:      e.Epoch,
		Reason:     e.Reason,
		DurationMS: e.Duration.Milliseconds(),
		Tandem:     src,
	}
}

// JSON returns p as one line of JSON, without HTML escaping (reasons hold
// "<" and ">" verbatim).
func (p Payload) JSON() []byte {
	return marshal(p)
}

// SlackJSON returns the FormatSlack body: {"text": Summary}, with the
// three characters Slack treats as markup (& < >) escaped as it asks.
func (p Payload) SlackJSON() []byte {
	text := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(p.Summary())
	return marshal(struct {
		Text string `json:"text"`
	}{text})
}

// Summary is p as one readable line, e.g.
//
//	tandem on proxy1: failover_finished: traffic moved from a to b (epoch 2) in 812ms: a failed 3 checks in a row
func (p Payload) Summary() string {
	var b strings.Builder
	b.WriteString("tandem")
	if p.Tandem.Host != "" {
		b.WriteString(" on ")
		b.WriteString(p.Tandem.Host)
	}
	b.WriteString(": ")
	b.WriteString(p.Type)
	if d := p.describe(); d != "" {
		b.WriteString(": ")
		b.WriteString(d)
	}
	b.WriteString(" (epoch ")
	b.WriteString(strconv.FormatUint(p.Epoch, 10))
	b.WriteString(")")
	if p.DurationMS > 0 {
		switch failover.EventType(p.Type) {
		case failover.EventSwitchoverStarted, failover.EventSwitchoverFinished, failover.EventSwitchoverRollback:
			fmt.Fprintf(&b, ", writes paused %dms", p.DurationMS)
		default:
			fmt.Fprintf(&b, " in %dms", p.DurationMS)
		}
	}
	if p.Reason != "" {
		b.WriteString(": ")
		b.WriteString(p.Reason)
	}
	return b.String()
}

// describe says what moved where, from the fields the event carries.
func (p Payload) describe() string {
	t := failover.EventType(p.Type)
	switch {
	case t == failover.EventRecovered && (p.To != "" || p.Node != ""):
		return "traffic back on " + first(p.To, p.Node)
	case p.From != "" && p.To != "":
		switch t {
		case failover.EventFailoverStarted, failover.EventSwitchoverStarted:
			return "moving traffic from " + p.From + " to " + p.To
		case failover.EventFailoverFinished, failover.EventSwitchoverFinished:
			return "traffic moved from " + p.From + " to " + p.To
		case failover.EventSwitchoverRollback:
			return "traffic stays on " + p.From + ", not moved to " + p.To
		}
		return "from " + p.From + " to " + p.To
	case p.From != "":
		switch t {
		case failover.EventFailoverStarted:
			return "moving traffic off " + p.From
		case failover.EventFailoverRefused:
			return "traffic not moved off " + p.From
		}
		return "from " + p.From
	case p.Node != "":
		return "node " + p.Node
	case p.To != "":
		return "to " + p.To
	}
	return ""
}

// Env returns the TANDEM_EVENT_* variables given to commands. A NUL byte,
// which the environment cannot hold, is dropped.
func (p Payload) Env() []string {
	nul := strings.NewReplacer("\x00", "")
	return []string{
		"TANDEM_EVENT_TYPE=" + nul.Replace(p.Type),
		"TANDEM_EVENT_TIME=" + p.Time,
		"TANDEM_EVENT_NODE=" + nul.Replace(p.Node),
		"TANDEM_EVENT_FROM=" + nul.Replace(p.From),
		"TANDEM_EVENT_TO=" + nul.Replace(p.To),
		"TANDEM_EVENT_EPOCH=" + strconv.FormatUint(p.Epoch, 10),
		"TANDEM_EVENT_REASON=" + nul.Replace(p.Reason),
		"TANDEM_EVENT_DURATION_MS=" + strconv.FormatInt(p.DurationMS, 10),
	}
}

func first(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("alert: payload does not encode: " + err.Error()) // strings and ints only
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// stamp sets a zero event time to now, so payloads never say year 1.
func stamp(e failover.Event) failover.Event {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	return e
}
