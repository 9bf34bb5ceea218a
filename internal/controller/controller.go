package controller

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/pkg/natsnames"
	"github.com/parityhq/parity/pkg/reconcile"
	"github.com/parityhq/parity/pkg/report"
	"github.com/parityhq/parity/pkg/rollout"
)

// conflictOr turns the store's compare-and-set failure into an [Error] of
// kind ErrConflict; other errors pass unchanged.
func conflictOr(err error) error {
	if errors.Is(err, store.ErrConflict) {
		return &Error{Kind: ErrConflict, Err: errors.New("the rollout changed meanwhile; read it again and retry")}
	}
	return err
}

// Actions on a rollout, as the audit log records them.
const (
	ActionPlan     = "plan"
	ActionPromote  = "promote"
	ActionRollback = "rollback"
	ActionPause    = "pause"
	ActionResume   = "resume"
	ActionKill     = "kill"
)

// Causes of a change, as the audit log records them.
const (
	CauseManual     = "manual"
	CauseGatePassed = "gate_passed"
	CauseGateFailed = "gate_failed"
	CauseKillSwitch = "kill_switch"
)

// GateNone in a step's Gate promotes on its hold alone; the empty Gate uses
// the experiment's promotion gate.
const GateNone = "none"

// ControllerActor is the audit log's actor for the controller's own changes.
const ControllerActor = "controller"

// DefaultInterval is how often the controller looks at every rollout.
const DefaultInterval = 2 * time.Second

// DefaultSettle is how long after a change of a rollout its gate's window
// starts.
const DefaultSettle = 5 * time.Second

// Store is what the controller reads and writes. *store.Store satisfies it.
type Store interface {
	Rollouts(ctx context.Context) ([]store.Rollout, error)
	Rollout(ctx context.Context, experiment string) (store.Rollout, error)
	CreateRollout(ctx context.Context, r store.Rollout, ev store.RolloutEvent) (store.Rollout, error)
	UpdateRollout(ctx context.Context, r store.Rollout, expect int64, ev store.RolloutEvent) (store.Rollout, error)
	SetRolloutBaseline(ctx context.Context, experiment string, revision int64, baseline []byte) error
	// Operations, Segments, Minutes and Latencies give the counts the gate
	// judges; Minutes is the series the change detector reads.
	Operations(ctx context.Context, experiment string) ([]string, error)
	Segments(ctx context.Context, experiment string, q store.SegmentQuery) ([]store.SegmentCount, error)
	Minutes(ctx context.Context, experiment string, q store.SegmentQuery) ([]store.MinuteCount, error)
	Latencies(ctx context.Context, experiment string, q store.SegmentQuery) ([]store.LatencyRow, error)
	GateSpec(ctx context.Context, experiment string) (store.GateSpec, error)
	// CompletedSweeps gives the reconciliation sweeps a step may require.
	CompletedSweeps(ctx context.Context, experiment string, since time.Time) ([]store.Sweep, error)
}

// Flags is where the controller hands the rollout documents it serves: the
// collector's OFREP table. Set replaces every document; Put adds or replaces
// one unless the table holds a newer revision of it.
type Flags interface {
	Set(docs []rollout.Document)
	Put(d rollout.Document)
}

// Options configure a [Controller]. The zero value is usable.
type Options struct {
	// KV is the bucket rollouts are published to ([EnsureBucket]); nil
	// publishes nowhere but Flags.
	KV jetstream.KeyValue
	// Interval is how often [Controller.Run] looks at every rollout.
	// Defaults to DefaultInterval.
	Interval time.Duration
	// Settle is how long after a change of a rollout its gate's window
	// starts. Defaults to DefaultSettle.
	Settle time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Controller moves rollouts. Every change, an operator's or its own, goes
// through [Controller.apply]: checked with [rollout.Transition], written to
// PostgreSQL with a compare-and-set on the revision together with its audit
// entry, then published to the flag table and the NATS KV bucket. Several
// collectors may run controllers against one database: the revision check
// lets exactly one of them make each change. Its methods are safe for
// concurrent use.
type Controller struct {
	db       Store
	flags    Flags
	kv       jetstream.KeyValue // nil: no KV publishing
	interval time.Duration
	// settleTime is how long after a change the gate's window starts.
	settleTime time.Duration
	log        *slog.Logger
	now        func() time.Time

	mu        sync.Mutex
	published map[string]int64 // flag → revision known to be in the KV bucket
}

// New returns a controller over db that serves its documents to flags.
func New(db Store, flags Flags, o Options) *Controller {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Settle <= 0 {
		o.Settle = DefaultSettle
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Controller{db: db, flags: flags, kv: o.KV, interval: o.Interval, settleTime: o.Settle, log: o.Logger,
		now: time.Now, published: map[string]int64{}}
}

// Now is the controller's clock.
func (c *Controller) Now() time.Time { return c.now() }

// SettleTime is how long after a change of a rollout its gate's window
// starts.
func (c *Controller) SettleTime() time.Duration { return c.settleTime }

// settle takes the baseline of r's gate window once the step has run for
// settleTime: by then the pairs made before the change have been verified
// and counted (a flush is at most a second; a compared call is bounded by
// its timeout). It stores the baseline without a new revision: what users
// get does not change.
func (c *Controller) settle(ctx context.Context, r store.Rollout) (store.Rollout, error) {
	var b baseline
	if json.Unmarshal(r.Baseline, &b) == nil && b.Taken || c.now().Sub(r.EnteredAt) < c.settleTime {
		return r, nil
	}
	snap, err := c.snapshot(ctx, r.Experiment, c.now())
	if err != nil {
		return r, err
	}
	if err := c.db.SetRolloutBaseline(ctx, r.Experiment, r.Revision, snap); err != nil {
		return r, err
	}
	r.Baseline = snap
	return r, nil
}

// EnsureBucket creates the KV bucket rollouts are published to, if
// missing, with replicas copies.
func EnsureBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, natsnames.RolloutBucket)
	if err == nil {
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("controller: rollout bucket: %w", err)
	}
	kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: natsnames.RolloutBucket, Description: "Parity rollout state, one document per flag", History: 5,
		Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		return js.KeyValue(ctx, natsnames.RolloutBucket)
	}
	if err != nil {
		return nil, fmt.Errorf("controller: create rollout bucket: %w", err)
	}
	return kv, nil
}

// Run ticks until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		c.Tick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Tick refreshes the flag table from the database, lets the gate of every
// rollout that is not killed move it, and publishes what the KV bucket
// lacks.
func (c *Controller) Tick(ctx context.Context) {
	rs, err := c.db.Rollouts(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("controller: rollouts", "err", err)
		}
		return
	}
	docs := make([]rollout.Document, 0, len(rs))
	for i, r := range rs {
		plan, err := ParsePlan(r.Plan)
		if err != nil {
			c.log.Error("controller: stored rollout plan is invalid; not served", "experiment", r.Experiment, "err", err)
			continue
		}
		if r.Status != rollout.StatusKilled {
			next, err := c.settle(ctx, r)
			if err == nil {
				next, err = c.step(ctx, next, plan)
			}
			switch {
			case errors.Is(err, ErrConflict): // another collector moved it; next tick
			case err != nil && ctx.Err() == nil:
				c.log.Warn("controller: rollout controller", "experiment", r.Experiment, "err", err)
			}
			rs[i] = next
		}
		docs = append(docs, document(rs[i], plan))
	}
	c.flags.Set(docs)
	for _, d := range docs {
		if err := c.publish(ctx, d); err != nil && ctx.Err() == nil {
			c.log.Warn("controller: publish rollout", "flag", d.Flag, "err", err)
		}
	}
}

// step is the controller's decision for one rollout that is not killed:
// step back on a breach of the current step's gate (paused or not: pausing
// stops advancing, not protecting), advance when an active rollout's gate
// passed for the hold (with AutoPromote), else nothing. It returns the
// rollout as it is afterwards.
func (c *Controller) step(ctx context.Context, r store.Rollout, plan rollout.Plan) (store.Rollout, error) {
	n := r.Step
	active := r.Status == rollout.StatusActive
	if n == 0 {
		if !active || !plan.AutoPromote {
			return r, nil
		}
		return c.apply(ctx, r, plan, change{action: ActionPromote, cause: CauseGatePassed, actor: ControllerActor, to: 1,
			status: rollout.StatusActive, reason: "no step is applied yet, so there is no evidence to wait for: applying " + stepLabel(plan, 0)})
	}
	gv, gated, err := c.Gate(ctx, r, plan)
	if err != nil {
		return r, err
	}
	cur := plan.Steps[n-1]
	if gated && gv.Verdict == report.Fail {
		reason := fmt.Sprintf("%s breached its gate: %s", stepLabel(plan, n-1), gv.Reason)
		if err := rollout.Transition(plan, rollout.State{Step: n}, rollout.State{Step: n - 1}); err != nil {
			if !active {
				return r, nil // paused already, and nowhere safe to go
			}
			return c.apply(ctx, r, plan, change{action: ActionPause, cause: CauseGateFailed, actor: ControllerActor, to: n,
				status: rollout.StatusPaused, reason: reason + "; stepping back is unsafe, so the rollout is paused where it is: " + err.Error(), detail: gateDetail(gv)})
		}
		return c.apply(ctx, r, plan, change{action: ActionRollback, cause: CauseGateFailed, actor: ControllerActor, to: n - 1,
			status: rollout.StatusPaused, reason: reason + "; stepped back to the last safe step and paused until an operator resumes", detail: gateDetail(gv)})
	}
	if !active || !plan.AutoPromote || n == len(plan.Steps) {
		return r, nil
	}
	held := c.now().Sub(r.EnteredAt)
	if held < cur.Hold || gated && gv.Verdict != report.Pass {
		return r, nil
	}
	if missing, err := c.Unreconciled(ctx, r, plan); err != nil || missing != "" {
		return r, err // waits for the sweeps; Unreconciled says why
	}
	why := fmt.Sprintf("%s held for %s", stepLabel(plan, n-1), held.Round(time.Second))
	if gated {
		why += " and passed its gate: " + gv.Reason
	} else {
		why += " (no gate)"
	}
	return c.apply(ctx, r, plan, change{action: ActionPromote, cause: CauseGatePassed, actor: ControllerActor, to: n + 1,
		status: rollout.StatusActive, reason: why + "; applying " + stepLabel(plan, n), detail: gateDetail(gv)})
}

// change is one change of a rollout.
type change struct {
	action, cause, actor, reason string
	to                           int
	status                       string
	detail                       any
	// restart starts a new gate window even when the step stays.
	restart bool
	// planDoc, when set, replaces the stored plan.
	planDoc []byte
}

// apply makes ch to r: checks the transition, writes it with its audit entry
// if r is still the current revision, and publishes the result.
func (c *Controller) apply(ctx context.Context, r store.Rollout, plan rollout.Plan, ch change) (store.Rollout, error) {
	if ch.to != r.Step {
		if err := rollout.Transition(plan, rollout.State{Step: r.Step}, rollout.State{Step: ch.to}); err != nil {
			return r, &Error{Kind: ErrRefused, Err: err}
		}
	}
	next := r
	next.Step, next.Status = ch.to, ch.status
	if ch.planDoc != nil {
		next.Plan = ch.planDoc
	}
	if ch.to != r.Step || ch.restart {
		at := c.now()
		next.EnteredAt, next.Baseline = at, pending(at)
	}
	ev := store.RolloutEvent{Actor: ch.actor, Action: ch.action, Cause: ch.cause, FromStep: r.Step, Reason: ch.reason}
	if ch.detail != nil {
		ev.Detail, _ = json.Marshal(ch.detail) // plain data always marshals
	}
	saved, err := c.db.UpdateRollout(ctx, next, r.Revision, ev)
	if err != nil {
		return r, conflictOr(err)
	}
	c.log.Info("controller: rollout changed", "experiment", r.Experiment, "action", ch.action, "cause", ch.cause,
		"actor", ch.actor, "from_step", r.Step, "to_step", saved.Step, "status", saved.Status, "revision", saved.Revision)
	d := document(saved, plan)
	c.flags.Put(d)
	if err := c.publish(ctx, d); err != nil {
		// The next tick publishes it again; the change itself is made.
		c.log.Warn("controller: publish rollout", "flag", d.Flag, "err", err)
	}
	return saved, nil
}

// publish puts d into the KV bucket unless the bucket already holds that
// revision or a later one. It updates with a compare-and-set on the entry's
// revision, so the bucket's documents only ever move forward even when
// several collectors publish at once.
func (c *Controller) publish(ctx context.Context, d rollout.Document) error {
	if c.kv == nil {
		return nil
	}
	c.mu.Lock()
	done := c.published[d.Flag] >= d.Revision
	c.mu.Unlock()
	if done {
		return nil
	}
	b, _ := json.Marshal(d) // plain data always marshals
	var err error
	for range 3 {
		var e jetstream.KeyValueEntry
		e, err = c.kv.Get(ctx, d.Flag)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			_, err = c.kv.Create(ctx, d.Flag, b)
		case err != nil:
			return fmt.Errorf("controller: read %s from the rollout bucket: %w", d.Flag, err)
		default:
			if old, perr := rollout.ParseDocument(e.Value()); perr == nil && old.Revision >= d.Revision {
				err = nil
				break
			}
			_, err = c.kv.Update(ctx, d.Flag, b, e.Revision())
		}
		if err == nil {
			c.mu.Lock()
			c.published[d.Flag] = max(c.published[d.Flag], d.Revision)
			c.mu.Unlock()
			return nil
		}
	}
	return fmt.Errorf("controller: write %s to the rollout bucket: %w", d.Flag, err)
}

// baseline is the counts a step's gate window starts from: the counts summed
// since Since (the minute the step was entered) at the moment it was. The
// gate judges what was counted after that moment.
//
// The snapshot is taken only once the step has settled (see
// [Controller.settle]): pairs from before the change that are still being
// verified when it is made must not count for the new step. Until then Taken
// is false and the gate is not judged.
type baseline struct {
	Since time.Time `json:"since"`
	Taken bool      `json:"taken"`
	// At is when the snapshot was taken: the start of the gate's window.
	At time.Time `json:"at,omitzero"`
	// Segments are the counts per unit (see [unitKey]), by name.
	Segments map[string]report.Counters `json:"segments,omitempty"`
}

// UnmarshalJSON reads a baseline, including one stored before counters were
// persisted by name, whose segments held positional arrays [pairs,
// divergent, control errors, candidate errors, skipped, timeouts].
func (b *baseline) UnmarshalJSON(data []byte) error {
	type plain baseline
	var raw struct {
		plain
		Segments map[string]json.RawMessage `json:"segments,omitempty"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*b = baseline(raw.plain)
	b.Segments = make(map[string]report.Counters, len(raw.Segments))
	for k, v := range raw.Segments {
		var c report.Counters
		if len(v) > 0 && v[0] == '[' {
			var pos []int64
			if err := json.Unmarshal(v, &pos); err != nil {
				return fmt.Errorf("segment %q: %w", k, err)
			}
			if len(pos) > report.NumCounters {
				return fmt.Errorf("segment %q: %d positional counters, at most %d", k, len(pos), report.NumCounters)
			}
			fields := c.Fields()
			for i, v := range pos {
				*fields[i] = v
			}
		} else if err := json.Unmarshal(v, &c); err != nil {
			return fmt.Errorf("segment %q: %w", k, err)
		}
		b.Segments[k] = c
	}
	return nil
}

// Settling reports whether r's current step has not settled yet: its gate's
// window has not started, as pairs from before the change may still be being
// counted.
func Settling(r store.Rollout) bool {
	var b baseline
	return json.Unmarshal(r.Baseline, &b) != nil || !b.Taken
}

// pending is the baseline of a step just entered at at: not yet taken.
func pending(at time.Time) []byte {
	b, _ := json.Marshal(baseline{Since: at.UTC().Truncate(time.Minute)}) // plain data always marshals
	return b
}

func (c *Controller) snapshot(ctx context.Context, experiment string, at time.Time) ([]byte, error) {
	b := baseline{Since: at.UTC().Truncate(time.Minute), Taken: true, At: at.UTC(), Segments: map[string]report.Counters{}}
	units, err := c.units(ctx, experiment, b.Since)
	if err != nil {
		return nil, err
	}
	for _, u := range units {
		for _, r := range u.rows {
			b.Segments[unitKey(u.op, r.Segment)] = r.Counters
		}
	}
	return json.Marshal(b)
}

// opRows are one operation's counts per segment.
type opRows struct {
	op   string
	rows []store.SegmentCount
}

// units reads the counts since since per operation and segment: the gate
// judges each (operation, segment) on its own, so that a bug in one
// operation is not diluted by another's agreeing pairs in the same segment.
func (c *Controller) units(ctx context.Context, experiment string, since time.Time) ([]opRows, error) {
	ops, err := c.db.Operations(ctx, experiment)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]opRows, 0, len(ops))
	for _, op := range ops {
		rows, err := c.db.Segments(ctx, experiment, store.SegmentQuery{Since: since, Operation: op})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		out = append(out, opRows{op, rows})
	}
	return out, nil
}

// unitKey names an (operation, segment) unit in baselines and verdicts, e.g.
// "get-order country=IN,plan=free". Operation names have no spaces.
func unitKey(op, segment string) string { return op + " " + segment }

// Gate judges the current step of r over its window: the pairs counted since
// the step settled, per operation and segment (see [Controller.units]). gated is false when there is nothing to
// judge (no step applied, or the step's gate is "none").
func (c *Controller) Gate(ctx context.Context, r store.Rollout, plan rollout.Plan) (gv GateView, gated bool, err error) {
	if r.Step == 0 || plan.Steps[r.Step-1].Gate == GateNone {
		return GateView{}, false, nil
	}
	g, err := StoredGate(ctx, c.db, r.Experiment)
	if err != nil {
		return GateView{}, false, err
	}
	spec, _, err := g.Spec()
	if err != nil {
		return GateView{}, false, fmt.Errorf("controller: gate of %s: %w", r.Experiment, err)
	}
	var b baseline
	if err := json.Unmarshal(r.Baseline, &b); err != nil || !b.Taken {
		return GateView{Experiment: r.Experiment, Since: r.EnteredAt, Spec: g, GateResult: report.GateResult{
			Verdict: report.Inconclusive, Alpha: cmp.Or(spec.Alpha, report.DefaultAlpha),
			Reason: fmt.Sprintf("settling: the step's first %s are not judged, so that pairs from before it are not counted", c.settleTime),
		}}, true, nil
	}
	units, err := c.units(ctx, r.Experiment, b.Since)
	if err != nil {
		return GateView{}, false, err
	}
	var segs []report.Segment
	for _, u := range units {
		kept := u.rows[:0]
		for _, row := range u.rows {
			row.Counters.Sub(b.Segments[unitKey(u.op, row.Segment)])
			if row.Pairs > 0 {
				kept = append(kept, row)
			}
		}
		if len(kept) == 0 {
			continue
		}
		q := store.SegmentQuery{Since: b.Since, Operation: u.op}
		opSegs, err := WithLatencies(ctx, c.db, r.Experiment, q, kept)
		if err != nil {
			return GateView{}, false, err
		}
		err = WithMinutes(ctx, c.db, r.Experiment, q, opSegs, func(seg string) report.Counters { return b.Segments[unitKey(u.op, seg)] })
		if err != nil {
			return GateView{}, false, err
		}
		for _, sg := range opSegs {
			sg.Key = unitKey(u.op, sg.Key)
			segs = append(segs, sg)
		}
	}
	res, err := report.Evaluate(spec, segs, report.Total(segs))
	if err != nil {
		return GateView{}, false, fmt.Errorf("controller: gate of %s: %w", r.Experiment, err)
	}
	return GateView{Experiment: r.Experiment, Since: cmp.Or(b.At, r.EnteredAt), Spec: g, GateResult: res}, true, nil
}

// gateDetail is the evidence an audit entry keeps: the verdict and the
// segments that decided it.
func gateDetail(gv GateView) any {
	if gv.Verdict == "" {
		return nil
	}
	type seg struct {
		Segment   string  `json:"segment"`
		Verdict   string  `json:"verdict"`
		Pairs     int64   `json:"pairs"`
		Divergent int64   `json:"divergent"`
		Rate      float64 `json:"rate"`
		Reason    string  `json:"reason"`
		DecidedBy string  `json:"decided_by,omitempty"`
	}
	d := struct {
		Verdict   string    `json:"verdict"`
		Reason    string    `json:"reason"`
		DecidedBy string    `json:"decided_by,omitempty"`
		Since     time.Time `json:"since"`
		Segments  []seg     `json:"segments"`
	}{Verdict: string(gv.Verdict), Reason: gv.Reason, DecidedBy: gv.DecidedBy, Since: gv.Since}
	for _, s := range gv.Segments {
		if gv.Verdict == report.Fail && s.Verdict != report.Fail {
			continue // a breach keeps the segments that breached
		}
		d.Segments = append(d.Segments, seg{Segment: s.Segment, Verdict: string(s.Verdict), Pairs: s.Divergence.Total,
			Divergent: s.Divergence.Hits, Rate: s.Divergence.Value, Reason: s.Reason, DecidedBy: s.DecidedBy})
	}
	return d
}

// ParsePlan reads a stored plan and validates it.
func ParsePlan(b []byte) (rollout.Plan, error) {
	var p rollout.Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("controller: rollout plan: %w", err)
	}
	return p, p.Validate()
}

func document(r store.Rollout, plan rollout.Plan) rollout.Document {
	return rollout.Document{Version: rollout.DocumentVersion, Flag: r.Flag, Plan: plan, State: rollout.State{Step: r.Step}, Status: r.Status,
		Revision: r.Revision, UpdatedAt: r.UpdatedAt}
}

func stepLabel(p rollout.Plan, i int) string {
	if i < 0 || i >= len(p.Steps) {
		return "base"
	}
	s := fmt.Sprintf("steps[%d]", i)
	if p.Steps[i].Name != "" {
		s += " (" + p.Steps[i].Name + ")"
	}
	return s
}

// --- operator actions -------------------------------------------------------

// SavePlan creates the experiment's rollout, paused at step 0, or replaces
// its plan. A plan may only be replaced without changing what users get: the
// experiment, base stage and every applied step must stay as they are (roll
// back first to change an applied step), and the flag cannot change.
func (c *Controller) SavePlan(ctx context.Context, experiment, flag string, plan rollout.Plan, actor, reason string) (store.Rollout, error) {
	if plan.Experiment == "" {
		plan.Experiment = experiment
	}
	if plan.Experiment != experiment {
		return store.Rollout{}, newError(ErrInvalid, "plan: experiment %q is not %q, the experiment in the path", plan.Experiment, experiment)
	}
	if flag == "" {
		flag = experiment
	}
	if err := rollout.ValidFlagKey(flag); err != nil {
		return store.Rollout{}, &Error{Kind: ErrInvalid, Err: err}
	}
	if err := validatePlan(plan); err != nil {
		return store.Rollout{}, &Error{Kind: ErrInvalid, Err: err}
	}
	doc, _ := json.Marshal(plan) // plain data always marshals
	cur, err := c.db.Rollout(ctx, experiment)
	if errors.Is(err, store.ErrNotFound) {
		at := c.now()
		r, err := c.db.CreateRollout(ctx, store.Rollout{Experiment: experiment, Flag: flag, Plan: doc, Status: rollout.StatusPaused, EnteredAt: at, Baseline: pending(at)},
			store.RolloutEvent{Actor: actor, Action: ActionPlan, Cause: CauseManual, Reason: reason})
		if err != nil {
			return store.Rollout{}, conflictOr(err)
		}
		d := document(r, plan)
		c.flags.Put(d)
		if err := c.publish(ctx, d); err != nil {
			c.log.Warn("controller: publish rollout", "flag", d.Flag, "err", err)
		}
		return r, nil
	}
	if err != nil {
		return store.Rollout{}, err
	}
	if cur.Flag != flag {
		return store.Rollout{}, newError(ErrRefused, "the rollout of %s serves flag %q; a plan cannot move it to %q", experiment, cur.Flag, flag)
	}
	old, err := ParsePlan(cur.Plan)
	if err == nil {
		if err := samePrefix(old, plan, cur.Step); err != nil {
			return store.Rollout{}, &Error{Kind: ErrRefused, Err: err}
		}
	}
	return c.apply(ctx, cur, plan, change{action: ActionPlan, cause: CauseManual, actor: actor, reason: reason, to: cur.Step, status: cur.Status, planDoc: doc})
}

// validatePlan is [rollout.Plan.Validate] plus what the controller needs:
// every step's gate is the experiment's ("") or GateNone.
func validatePlan(p rollout.Plan) error {
	errs := []error{p.Validate()}
	for i, st := range p.Steps {
		if st.Gate != "" && st.Gate != GateNone {
			errs = append(errs, &rollout.FieldError{Field: fmt.Sprintf("steps[%d].gate", i),
				Problem: fmt.Sprintf("%q is not a gate: leave it empty for the experiment's promotion gate, or %q to promote on the hold alone", st.Gate, GateNone)})
		}
	}
	return errors.Join(errs...)
}

// samePrefix refuses a new plan that would change what users get at step
// n: the experiment (it salts the percentages), the base stage or any of the
// first n steps.
func samePrefix(old, p rollout.Plan, n int) error {
	switch {
	case old.Experiment != p.Experiment:
		return fmt.Errorf("the plan's experiment cannot change (it salts the percentages)")
	case old.Base != p.Base:
		return fmt.Errorf("base stage %q → %q would change what users get now; roll back to step 0 first", old.Base, p.Base)
	case len(p.Steps) < n:
		return fmt.Errorf("the plan has %d steps but %d are applied; roll back to step %d first", len(p.Steps), n, len(p.Steps))
	}
	for i := range n {
		if !reflect.DeepEqual(old.Steps[i], p.Steps[i]) {
			return fmt.Errorf("steps[%d] is applied and would change; roll back to step %d first, then change it", i, i)
		}
	}
	return nil
}

// Act carries out an operator's action. to is the target step of promote
// and rollback (nil: the next or the previous step).
func (c *Controller) Act(ctx context.Context, experiment, action, actor, reason string, to *int) (store.Rollout, error) {
	if reason == "" {
		return store.Rollout{}, newError(ErrInvalid, "reason: say why; the audit log keeps it")
	}
	r, err := c.db.Rollout(ctx, experiment)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.Rollout{}, newError(ErrNotFound, "rollout of %s not found", experiment)
		}
		return store.Rollout{}, err
	}
	plan, err := ParsePlan(r.Plan)
	if err != nil {
		return store.Rollout{}, err
	}
	ch := change{action: action, cause: CauseManual, actor: actor, reason: reason, to: r.Step, status: r.Status}
	target := func(def int) error {
		if to != nil {
			def = *to
		}
		if def < 0 || def > len(plan.Steps) {
			return newError(ErrRefused, "step %d is outside 0..%d", def, len(plan.Steps))
		}
		ch.to = def
		return nil
	}
	switch action {
	case ActionPromote:
		if err := target(r.Step + 1); err != nil {
			return r, err
		}
		if ch.to <= r.Step {
			return r, newError(ErrRefused, "promote goes forward; step %d is not after %d (use rollback)", ch.to, r.Step)
		}
		missing, err := c.Unreconciled(ctx, r, plan)
		if err != nil {
			return r, err
		}
		if missing != "" {
			return r, newError(ErrRefused, "%s", missing)
		}
		if gv, gated, err := c.Gate(ctx, r, plan); err == nil && gated {
			ch.detail = gateDetail(gv)
		}
	case ActionRollback:
		if err := target(r.Step - 1); err != nil {
			return r, err
		}
		if ch.to >= r.Step {
			return r, newError(ErrRefused, "rollback goes back; step %d is not before %d (use promote)", ch.to, r.Step)
		}
		ch.status = rollout.StatusPaused // the controller must not undo it
	case ActionPause:
		if r.Status != rollout.StatusActive {
			return r, newError(ErrRefused, "the rollout is %s, not active", r.Status)
		}
		ch.status = rollout.StatusPaused
	case ActionResume:
		if r.Status == rollout.StatusActive {
			return r, newError(ErrRefused, "the rollout is already active")
		}
		ch.status, ch.restart = rollout.StatusActive, true // a new window: evidence from before does not count
	case ActionKill:
		ch.to, ch.status, ch.cause, ch.restart = rollout.Kill(plan, rollout.State{Step: r.Step}).Step, rollout.StatusKilled, CauseKillSwitch, true
	default:
		return r, newError(ErrNotFound, "no action %s (promote, rollback, pause, resume, kill)", action)
	}
	return c.apply(ctx, r, plan, ch)
}

// Unreconciled says why the rollout may not leave its current step yet
// because of the step's reconcile requirement (see [rollout.Step]): the
// named sweeps that have not completed clean since the step began. It
// returns "" when every one has, or when the step requires none.
func (c *Controller) Unreconciled(ctx context.Context, r store.Rollout, plan rollout.Plan) (string, error) {
	if r.Step < 1 || r.Step > len(plan.Steps) || len(plan.Steps[r.Step-1].Reconcile) == 0 {
		return "", nil
	}
	want := plan.Steps[r.Step-1].Reconcile
	sws, err := c.db.CompletedSweeps(ctx, r.Experiment, r.EnteredAt)
	if err != nil {
		return "", err
	}
	var missing []string
	for _, name := range want {
		status := "no sweep of " + name + " has completed since the step began"
		for _, sw := range sws { // newest first
			if sw.Name != name {
				continue
			}
			var counts reconcile.Counts
			if err := json.Unmarshal(sw.Counts, &counts); err != nil {
				return "", fmt.Errorf("controller: sweep %d counts: %w", sw.ID, err)
			}
			if counts.Differences() == 0 {
				status = ""
			} else {
				status = fmt.Sprintf("the last sweep of %s (#%d) found %d rows that differ", name, sw.ID, counts.Differences())
			}
			break
		}
		if status != "" {
			missing = append(missing, status)
		}
	}
	if len(missing) == 0 {
		return "", nil
	}
	return fmt.Sprintf("%s requires clean reconciliation sweeps started after %s: %s", stepLabel(plan, r.Step-1),
		r.EnteredAt.UTC().Format(time.RFC3339), strings.Join(missing, "; ")), nil
}
