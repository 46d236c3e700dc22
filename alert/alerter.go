package alert

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"

	"github.com/tandemdb/tandem/failover"
)

// Alerter fans events out to its sinks. Send and Hook are safe for
// concurrent use; each sink delivers in its own goroutine, one event at a
// time, in the order received.
type Alerter struct {
	src   Source
	sinks []*sink

	mu     sync.RWMutex // closed against Send: no event is queued after Close starts
	closed bool

	closing chan struct{}   // closed by Close: workers drain, then exit
	ctx     context.Context // ends when Close gives up: in-flight deliveries abort
	abort   context.CancelFunc
	once    sync.Once
	wg      sync.WaitGroup
	done    chan struct{} // closed when every worker has exited
}

// deliverer is what a sink does with one event. It returns nil when the
// receiver has it, and logs its own failures. It must return soon after
// ctx ends.
type deliverer interface {
	deliver(ctx context.Context, p Payload) error
	close()
}

// sink is one deliverer with its queue and counters.
type sink struct {
	kind, name string
	d          deliverer
	log        hclog.Logger
	queue      chan failover.Event

	sent, failed, dropped atomic.Uint64
	reported              uint64 // drops already logged; worker only
}

// Stats counts what each sink did since New, for metrics.
type Stats struct {
	Sinks []SinkStats
}

// SinkStats are one sink's counters. Sent+Failed+Dropped+Queued, plus the
// event in flight if any, is every event given to Send.
type SinkStats struct {
	Kind    string // "webhook" or "command"
	Name    string // the URL without user info nor query, or the command path
	Sent    uint64 // delivered: 2xx answer, or exit status 0
	Failed  uint64 // given up after the last attempt
	Dropped uint64 // pushed out of a full queue, sent after Close, or abandoned by Close
	Queued  int    // waiting now
}

// New checks cfg, resolves each command in PATH and starts one goroutine
// per sink. log may be nil. Call Close to stop.
func New(cfg Config, log hclog.Logger) (*Alerter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = hclog.NewNullLogger()
	}
	log = log.Named("alert")
	src := Source{Version: cfg.Version, Host: cfg.Host}
	if src.Host == "" {
		src.Host, _ = os.Hostname()
	}
	a := &Alerter{src: src, closing: make(chan struct{}), done: make(chan struct{})}
	for i, c := range cfg.Commands {
		path, err := exec.LookPath(c.Path)
		if err != nil {
			return nil, fmt.Errorf("Commands[%d].Path: %w", i, err)
		}
		c.Path = path
		l := log.With("command", c.Path)
		a.sinks = append(a.sinks, &sink{kind: "command", name: c.Path, d: &command{cfg: c, log: l}, log: l})
	}
	for _, w := range cfg.Webhooks {
		wh := newWebhook(w, src.Version, log)
		a.sinks = append(a.sinks, &sink{kind: "webhook", name: wh.url, d: wh, log: wh.log})
	}
	a.ctx, a.abort = context.WithCancel(context.Background())
	for _, s := range a.sinks {
		s.queue = make(chan failover.Event, cfg.QueueSize)
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			s.run(a.ctx, a.closing, a.src)
		}()
	}
	return a, nil
}

// Hook returns Send as a failover.Hook.
func (a *Alerter) Hook() failover.Hook { return a.Send }

// Send queues e for every sink and returns at once: it never waits for a
// receiver. A sink whose queue is full drops its oldest event to make
// room. After Close, e is dropped. A zero e.Time is set to now.
func (a *Alerter) Send(e failover.Event) {
	e = stamp(e)
	a.mu.RLock()
	defer a.mu.RUnlock()
	for _, s := range a.sinks {
		if a.closed {
			s.dropped.Add(1)
			continue
		}
		s.enqueue(e)
	}
}

// Close stops taking events and waits until every queue is delivered or
// ctx ends; then in-flight deliveries are aborted (a running command is
// killed), what is left is dropped, and the error wraps ctx.Err(). Close
// returns only once every sink goroutine has exited; it may be called
// again.
func (a *Alerter) Close(ctx context.Context) error {
	a.once.Do(func() {
		a.mu.Lock()
		a.closed = true
		a.mu.Unlock()
		close(a.closing)
		go func() {
			a.wg.Wait()
			for _, s := range a.sinks {
				s.d.close()
			}
			a.abort()
			close(a.done)
		}()
	})
	select {
	case <-a.done:
		return nil
	case <-ctx.Done():
		a.abort()
		<-a.done
		return fmt.Errorf("alert: queues not drained: %w", ctx.Err())
	}
}

// Stats returns the counters of each sink, commands first, then webhooks,
// each in config order.
func (a *Alerter) Stats() Stats {
	st := Stats{Sinks: make([]SinkStats, len(a.sinks))}
	for i, s := range a.sinks {
		st.Sinks[i] = SinkStats{
			Kind: s.kind, Name: s.name,
			Sent: s.sent.Load(), Failed: s.failed.Load(), Dropped: s.dropped.Load(),
			Queued: len(s.queue),
		}
	}
	return st
}

// enqueue adds e, dropping the oldest events while the queue is full.
// It never blocks: the worker only ever takes from the queue.
func (s *sink) enqueue(e failover.Event) {
	for {
		select {
		case s.queue <- e:
			return
		default:
		}
		select {
		case <-s.queue:
			s.dropped.Add(1)
		default: // the worker just took one: room now
		}
	}
}

// run delivers queued events one at a time. After closing it drains the
// queue and returns; once ctx ends, what is left is dropped.
func (s *sink) run(ctx context.Context, closing <-chan struct{}, src Source) {
	abandoned := 0
	for {
		var e failover.Event
		select {
		case e = <-s.queue:
		case <-closing:
			select {
			case e = <-s.queue:
			default:
				s.reportDrops()
				if abandoned > 0 {
					s.log.Warn("closing: events not delivered", "events", abandoned)
				}
				return
			}
		}
		if ctx.Err() != nil {
			abandoned++
			s.dropped.Add(1)
			s.reported++ // logged on return, not as a full queue
			continue
		}
		s.handle(ctx, e, src)
	}
}

func (s *sink) handle(ctx context.Context, e failover.Event, src Source) {
	s.reportDrops()
	if err := s.d.deliver(ctx, NewPayload(e, src)); err != nil {
		s.failed.Add(1)
		return
	}
	s.sent.Add(1)
}

// reportDrops logs drops since the last report, from the worker so that
// Send never logs.
func (s *sink) reportDrops() {
	if d := s.dropped.Load(); d > s.reported {
		s.log.Warn("queue full: oldest events dropped", "dropped", d-s.reported, "dropped_total", d)
		s.reported = d
	}
}
