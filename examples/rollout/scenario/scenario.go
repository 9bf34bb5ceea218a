// Package scenario runs Parity's closed-loop rollout end to end, in one
// process: a collector (dashboard, embedded NATS, verifiers, rollout
// controller), the orders example service reading its migration stage
// through Parity's OpenFeature provider, and traffic from users in IN, US
// and DE, reading and writing orders. The new read path has a bug for
// country=IN. The controller
// advances the testing group, starts the percentage steps, finds the breach
// in IN and steps back; the bug is fixed, an operator resumes, and the
// controller advances to complete.
//
// [Run] returns what happened: the rollout's audit log and, from an
// OpenFeature hook in the service, the stage every user actually got over
// time. The e2e test asserts on both; examples/rollout narrates them while
// the dashboard shows the rollout as it happens.
package scenario

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/open-feature/go-sdk/openfeature"

	"github.com/parityhq/parity/examples/orders/service"
	"github.com/parityhq/parity/internal/collector"
	"github.com/parityhq/parity/internal/controller"
	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/flagprovider"
	"github.com/parityhq/parity/pkg/natsnames"
	"github.com/parityhq/parity/pkg/rollout"
)

// Experiment and flag of the orders example.
const (
	Experiment = "orders-pg"
	Flag       = "orders-migration"
	BugCountry = "IN"
)

// TestingGroup are the users the plan's first live step targets.
var TestingGroup = []string{"123", "456"}

// Config configures [Run].
type Config struct {
	// DatabaseURL is Parity's database; OldURL and NewURL are the orders
	// service's; AdminURL is where they are created from.
	DatabaseURL, OldURL, NewURL, AdminURL string
	// Addr is the dashboard's address ("127.0.0.1:0": any port);
	// EmbeddedNATSAddr the embedded NATS server's; DataDir its storage.
	Addr, EmbeddedNATSAddr, DataDir string
	// AppAddr is the orders service's address.
	AppAddr string
	// Rate is requests per second; Users the number of distinct users.
	Rate, Users int
	// Hold is every step's hold time; Interval the controller's tick;
	// Settle how long after a change the gate's window starts (0: the
	// collector's default).
	Hold, Interval, Settle time.Duration
	// OperatorToken authenticates the scenario's operator actions; empty
	// makes one up.
	OperatorToken string
	// FixAfter is how long the rollout stays paused on the breach before
	// the bug is fixed, so that people can look at it on the dashboard.
	FixAfter time.Duration
	// Timeout bounds each phase (reaching the breach, reaching complete).
	Timeout time.Duration
	// Progress, if set, is told each audit-log entry and each phase as they
	// happen.
	Progress func(string)
	// Linger, if set, is called once the rollout is complete, before
	// everything stops: the demo waits there for Ctrl-C.
	Linger func(dashboard string)
	Logger *slog.Logger
}

// Eval is one flag evaluation in the service: the stage a user got.
type Eval struct {
	At    time.Time
	User  string
	Stage envelope.Stage
}

// Result is what happened.
type Result struct {
	Plan   rollout.Plan
	Events []collector.RolloutEventView
	// Evals are every evaluation of the flag in the service, in order.
	Evals []Eval
	// Country of each user.
	Country map[string]string
	// FixedAt is when the IN bug was fixed.
	FixedAt time.Time
	// Dashboard is the collector's URL.
	Dashboard string
}

// Plan is the rollout the scenario drives: everyone dual-writes, the testing
// group goes live, then 10%, 50% and 100% of everyone, then the old path is
// retired. Every step but the last is gated: dual-writing and rampdown on
// the compared writes, the live steps on reads and writes. Complete compares
// nothing, so nothing gates it.
func Plan(hold time.Duration) rollout.Plan {
	return rollout.Plan{Experiment: Experiment, AutoPromote: true, Steps: []rollout.Step{
		{Name: "dual-write everyone", Stage: envelope.StageDualWrite, Audience: rollout.Audience{Percent: 100}, Hold: hold},
		{Name: "testing group", Stage: envelope.StageLive, Audience: rollout.Audience{Users: TestingGroup}, Hold: hold},
		{Name: "10%", Stage: envelope.StageLive, Audience: rollout.Audience{Percent: 10}, Hold: hold},
		{Name: "50%", Stage: envelope.StageLive, Audience: rollout.Audience{Percent: 50}, Hold: hold},
		{Name: "everyone", Stage: envelope.StageLive, Audience: rollout.Audience{Percent: 100}, Hold: hold},
		{Name: "retire old reads", Stage: envelope.StageRampDown, Audience: rollout.Audience{Percent: 100}, Hold: hold},
		{Name: "complete", Stage: envelope.StageComplete, Audience: rollout.Audience{Percent: 100}, Gate: controller.GateNone},
	}}
}

// Gate is the scenario's promotion gate: every operation in every segment
// under 10% divergence at α = 5%, which a clean one proves in about 55
// pairs. A real rollout
// would ask for less divergence and wait for more pairs.
const Gate = `{"max_rate": 0.1, "min_pairs": 50, "window": "1h", "per_segment": true}`

// Run runs the scenario until the rollout is complete, ctx ends or a phase
// times out.
func Run(ctx context.Context, cfg Config) (res *Result, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.OperatorToken == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		cfg.OperatorToken = "op-" + hex.EncodeToString(b)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 3 * time.Minute
	}
	say := func(format string, args ...any) {
		if cfg.Progress != nil {
			cfg.Progress(fmt.Sprintf(format, args...))
		}
	}

	col, err := collector.Start(ctx, collector.Options{
		Addr: cfg.Addr, DatabaseURL: cfg.DatabaseURL, EmbeddedNATSAddr: cfg.EmbeddedNATSAddr, DataDir: cfg.DataDir,
		OperatorTokens: []string{cfg.OperatorToken}, RolloutInterval: cfg.Interval, RolloutSettle: cfg.Settle, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	defer func() { _ = col.Shutdown(context.WithoutCancel(ctx)) }()
	nc, err := nats.Connect(col.NATSURL(), nats.Name("parity-rollout-scenario"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("scenario: nats: %w", err)
	}
	defer nc.Close()
	provider, err := flagprovider.New(nc, flagprovider.Options{Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	api := &client{base: col.URL(), token: cfg.OperatorToken}
	res = &Result{Plan: Plan(cfg.Hold), Country: map[string]string{}, Dashboard: col.URL()}
	// The plan exists before the service starts, so its provider finds the
	// flag at once (everyone at off).
	if err := api.do(ctx, "PUT", "/api/v1/experiments/"+Experiment+"/gate/spec", json.RawMessage(Gate), nil); err != nil {
		return nil, err
	}
	if err := api.do(ctx, "PUT", "/api/v1/experiments/"+Experiment+"/rollout",
		collector.PlanUpdate{Flag: Flag, Plan: res.Plan, Reason: "migrate orders to the new schema"}, nil); err != nil {
		return nil, err
	}

	rec := &recorder{}
	svc, err := service.Setup(ctx, service.Options{
		AdminURL: cfg.AdminURL, OldURL: cfg.OldURL, NewURL: cfg.NewURL, Reset: true, NATSConn: nc,
		Provider: provider, Hooks: []openfeature.Hook{rec}, BugCountry: BugCountry,
	})
	if err != nil {
		return nil, err
	}
	defer svc.Close()
	ln, err := net.Listen("tcp", cfg.AppAddr)
	if err != nil {
		return nil, fmt.Errorf("scenario: listen: %w", err)
	}
	srv := &http.Server{Handler: svc.Handler, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Close() }()

	topts := service.TrafficOptions{Rate: cfg.Rate, Users: cfg.Users, Countries: []string{"IN", "US", "DE"}, Plans: []string{"free"},
		WriteEvery: 5, TestingGroup: TestingGroup}
	for i := range max(cfg.Users, 1) {
		u := fmt.Sprint(1000 + i)
		res.Country[u], _ = service.UserAttrs(u, topts)
	}
	for _, u := range TestingGroup {
		res.Country[u], _ = service.UserAttrs(u, topts)
	}
	tctx, stopTraffic := context.WithCancel(ctx)
	var traffic sync.WaitGroup
	traffic.Go(func() { service.Traffic(tctx, "http://"+ln.Addr().String(), topts) })
	defer func() { stopTraffic(); traffic.Wait() }()

	say("dashboard: %s/experiments/%s#rollout", col.URL(), Experiment)
	if err := api.do(ctx, "POST", "/api/v1/experiments/"+Experiment+"/rollout/resume",
		collector.RolloutAction{Reason: "start the rollout"}, nil); err != nil {
		return nil, err
	}
	w := &watcher{api: api, say: say}
	if err := w.until(ctx, cfg.Timeout, func(e collector.RolloutEventView) bool {
		return e.Action == controller.ActionRollback && e.Cause == controller.CauseGateFailed
	}); err != nil {
		return nil, fmt.Errorf("scenario: waiting for the breach in %s: %w", BugCountry, err)
	}

	if cfg.FixAfter > 0 {
		say("the rollout is paused on the breach; the bug gets fixed in %s", cfg.FixAfter)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(cfg.FixAfter):
		}
	}
	svc.SetBugCountry("")
	res.FixedAt = time.Now()
	say("the %s bug is fixed; waiting until the verifiers have counted every pair sent before the fix", BugCountry)
	if err := drained(ctx, nc, cfg.Timeout); err != nil {
		return nil, err
	}
	if err := api.do(ctx, "POST", "/api/v1/experiments/"+Experiment+"/rollout/resume",
		collector.RolloutAction{Reason: "fixed the " + BugCountry + " bug in the new read path"}, nil); err != nil {
		return nil, err
	}
	if err := w.until(ctx, cfg.Timeout, func(e collector.RolloutEventView) bool {
		return e.ToStep == len(res.Plan.Steps)
	}); err != nil {
		return nil, fmt.Errorf("scenario: waiting for complete: %w", err)
	}
	// A little more traffic at complete, so the users' last stage is seen.
	if err := rec.waitFor(ctx, cfg.Timeout, envelope.StageComplete, 50); err != nil {
		return nil, err
	}
	stopTraffic()
	traffic.Wait()
	if err := api.do(ctx, "GET", "/api/v1/experiments/"+Experiment+"/rollout/events", nil, &res.Events); err != nil {
		return nil, err
	}
	rec.mu.Lock()
	rec.done = true
	res.Evals = rec.evals
	rec.mu.Unlock()
	say("complete: the rollout reached %d of %d steps", len(res.Plan.Steps), len(res.Plan.Steps))
	if cfg.Linger != nil {
		cfg.Linger(col.URL())
	}
	return res, nil
}

// drained waits until the verifiers have acknowledged every pair the
// stream held when it was called.
func drained(ctx context.Context, nc *nats.Conn, timeout time.Duration) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st, err := js.Stream(ctx, natsnames.PairStream)
	if err != nil {
		return fmt.Errorf("scenario: stream: %w", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return fmt.Errorf("scenario: stream: %w", err)
	}
	last := info.State.LastSeq
	for {
		names := st.ConsumerNames(ctx)
		acked := uint64(0)
		for name := range names.Name() {
			c, err := st.Consumer(ctx, name)
			if err != nil {
				continue
			}
			if ci, err := c.Info(ctx); err == nil {
				acked = max(acked, ci.AckFloor.Stream)
			}
		}
		if acked >= last {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("scenario: the verifiers acknowledged up to %d of %d: %w", acked, last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// watcher follows the audit log, telling each new entry.
type watcher struct {
	api  *client
	say  func(string, ...any)
	seen int
}

func (w *watcher) until(ctx context.Context, timeout time.Duration, done func(collector.RolloutEventView) bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		var evs []collector.RolloutEventView
		if err := w.api.do(ctx, "GET", "/api/v1/experiments/"+Experiment+"/rollout/events", nil, &evs); err != nil {
			return err
		}
		hit := false
		for _, e := range evs[min(w.seen, len(evs)):] {
			w.say("%s %s (%s) by %s: step %d → %d, %s. %s", e.At.Format("15:04:05"), e.Action, e.Cause, e.Actor, e.FromStep, e.ToStep, e.Status, e.Reason)
			hit = hit || done(e)
		}
		w.seen = len(evs)
		if hit {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// recorder is an OpenFeature hook recording the stage each user gets.
type recorder struct {
	openfeature.UnimplementedHook
	mu     sync.Mutex
	evals  []Eval
	done   bool
	counts map[envelope.Stage]int
}

func (r *recorder) After(_ context.Context, hc openfeature.HookContext, d openfeature.InterfaceEvaluationDetails, _ openfeature.HookHints) error {
	v, ok := d.Value.(string)
	user := hc.EvaluationContext().TargetingKey()
	if !ok || user == "" || hc.FlagKey() != Flag {
		return nil
	}
	st := envelope.Stage(v)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return nil
	}
	if r.counts == nil {
		r.counts = map[envelope.Stage]int{}
	}
	r.counts[st]++
	r.evals = append(r.evals, Eval{At: time.Now(), User: user, Stage: st})
	return nil
}

// waitFor waits until n evaluations have given stage.
func (r *recorder) waitFor(ctx context.Context, timeout time.Duration, stage envelope.Stage, n int) error {
	deadline := time.Now().Add(timeout)
	for {
		r.mu.Lock()
		got := r.counts[stage]
		r.mu.Unlock()
		if got >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("scenario: %d evaluations gave %s, waited for %d", got, stage, n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// client calls the collector's API as the operator.
type client struct {
	base, token string
}

func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("scenario: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("scenario: %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("scenario: %s %s: %w", method, path, err)
		}
	}
	return nil
}
