package collector

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"

	"github.com/parityhq/parity/internal/verifier"
	"github.com/parityhq/parity/pkg/natsnames"
	"github.com/parityhq/parity/pkg/publish"
)

// hookStaleAfter is how long a hook may go without reporting before the
// dashboard calls it stale (three missed reports at the default interval).
const hookStaleAfter = 30 * time.Second

// hookForgetAfter is when a silent hook is dropped from the list.
const hookForgetAfter = 24 * time.Hour

// hooks keeps the latest report of every hook (publisher) that sends them.
type hooks struct {
	mu     sync.Mutex
	latest map[string]publish.Report
	maxN   int // bound on instances kept
}

func newHooks() *hooks { return &hooks{latest: map[string]publish.Report{}, maxN: 10_000} }

// subscribe listens for hook reports on nc until the subscription is drained.
func (h *hooks) subscribe(nc *nats.Conn) (*nats.Subscription, error) {
	return nc.Subscribe(natsnames.HookReportSubject, func(m *nats.Msg) {
		var r publish.Report
		if json.Unmarshal(m.Data, &r) != nil || r.Instance == "" || len(r.Instance) > 200 {
			return // not a report: ignore rather than trust it
		}
		r.Time = time.Now().UTC() // when it was received: hooks' clocks may be off
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.latest[r.Instance]; ok || len(h.latest) < h.maxN {
			h.latest[r.Instance] = r
		}
	})
}

// HookView is one hook's latest report.
type HookView struct {
	publish.Report
	Stale bool `json:"stale"`
}

// PipelineView is the health of the path from the hooks to the store.
type PipelineView struct {
	Hooks []HookView `json:"hooks"`
	// Totals add up the reports of the hooks listed.
	Totals publish.Stats `json:"totals"`
	// Backlog is the pair stream's state for the verifiers; absent when
	// NATS could not be asked.
	Backlog *BacklogView `json:"backlog,omitempty"`
	// DeadLetters counts the envelopes set aside.
	DeadLetters int64 `json:"dead_letters"`
}

// BacklogView is the durable consumer's state.
type BacklogView struct {
	Pending    uint64 `json:"pending"`     // in the stream, not yet delivered to a verifier
	AckPending int    `json:"ack_pending"` // delivered, not yet acknowledged
}

func (h *hooks) view(now time.Time) ([]HookView, publish.Stats) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []HookView
	var t publish.Stats
	for k, r := range h.latest {
		age := now.Sub(r.Time)
		if age > hookForgetAfter {
			delete(h.latest, k)
			continue
		}
		out = append(out, HookView{Report: r, Stale: age > hookStaleAfter})
		t.Add(r.Stats)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Instance < out[j].Instance })
	return out, t
}

func (s *handlers) pipeline(ctx context.Context) (PipelineView, error) {
	var v PipelineView
	if s.hooks != nil {
		v.Hooks, v.Totals = s.hooks.view(time.Now())
	}
	if v.Hooks == nil {
		v.Hooks = []HookView{}
	}
	if s.js != nil {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if cons, err := s.js.Consumer(qctx, s.stream, s.durable); err == nil {
			if info, err := cons.Info(qctx); err == nil {
				v.Backlog = &BacklogView{Pending: info.NumPending, AckPending: info.NumAckPending}
			}
		}
	}
	n, err := s.db.DeadLetterCount(ctx)
	if err != nil {
		return v, err
	}
	v.DeadLetters = n
	return v, nil
}

func (s *handlers) apiPipeline(c echo.Context) error {
	v, err := s.pipeline(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

// consumerNames returns the stream and durable the verifiers use.
func consumerNames(o verifier.Options) (stream, durable string) {
	stream, durable = o.Stream.Name, o.Durable
	if stream == "" {
		stream = natsnames.PairStream
	}
	if durable == "" {
		durable = natsnames.VerifierDurable
	}
	return stream, durable
}
