package migration

import (
	"context"
	"fmt"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/parityhq/parity/pkg/envelope"
)

// Writer runs one migrating write. Its methods are safe for concurrent use.
type Writer[Req, Res any] struct {
	c         *core
	old       Func[Req, Res]
	new       Func[Req, Res]
	compare   func(Res, Res) bool
	frozenErr error
}

// WriteResult is a ready-made result type for writes that return nothing but
// a count, such as an SQL UPDATE: use Func[Req, WriteResult]. Embed it in
// your own result struct to report more; the count then appears in the pair
// as "rows_affected" next to your fields. Any JSON-encodable type works as a
// write result; this one only fixes the name of the count.
type WriteResult struct {
	RowsAffected int64 `json:"rows_affected"`
}

// NewWriter returns a Writer for cfg. It fails with an error wrapping
// [ErrInvalidOption] when a field of cfg or an option is invalid.
func NewWriter[Req, Res any](cfg Config[Req, Res], opts ...Option) (*Writer[Req, Res], error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c, err := newCore(cfg.Experiment, cfg.Operation, envelope.KindWrite, cfg.Flags, cfg.FlagKey, cfg.Publisher, opts)
	if err != nil {
		return nil, err
	}
	return &Writer[Req, Res]{
		c: c, old: cfg.Old, new: cfg.New, compare: cfg.Compare,
		frozenErr: fmt.Errorf("%w (experiment %s, operation %s)", ErrWriteFrozen, cfg.Experiment, cfg.Operation),
	}, nil
}

// Write performs one write the way the stage, evaluated from the flag for
// ec, says, and returns exactly what the authoritative path returned:
//
//	off        Old only
//	freeze     neither: returns an error wrapping ErrWriteFrozen
//	dualwrite  Old, then New
//	shadow     Old, then New
//	live       New, then Old
//	rampdown   New, then Old
//	complete   New only
//
// Both writes run on the caller's goroutine, in that order. When the
// authoritative (first) write fails or panics, the second is not attempted
// and the pair says "skipped"; its panic is re-raised after it has been
// recorded. The second write gets ctx with the [Timeout] deadline; its
// error, panic and result never reach the caller, but are published and
// counted.
//
// Every call in a comparing stage writes both paths, sampled or not: the
// sample decides only which pairs are published. The pair is built and
// published off the caller's path.
func (w *Writer[Req, Res]) Write(ctx context.Context, ec openfeature.EvaluationContext, req Req) (Res, error) {
	c := w.c
	c.n.calls.Add(1)
	fl := c.stage(ctx, ec)
	var auth, other Func[Req, Res]
	authIsNew := false
	switch fl.stage {
	case envelope.StageDualWrite, envelope.StageShadow:
		auth, other = w.old, w.new
	case envelope.StageLive, envelope.StageRampDown:
		auth, other = w.new, w.old
		authIsNew = true
	case envelope.StageComplete:
		return w.new(ctx, req)
	case envelope.StageFreeze:
		c.n.frozen.Add(1)
		var zero Res
		return zero, w.frozenErr
	default: // off
		return w.old(ctx, req)
	}
	c.n.offered.Add(1)
	key, tc := targetingKey(ctx, ec)
	if !c.sampled(ctx, key) {
		c.n.sampledOut.Add(1)
		res, err := auth(ctx, req)
		if err == nil {
			var s side[Res]
			w.runOther(ctx, other, req, &s, nil)
		}
		return res, err
	}

	wc := &writeCall[Req, Res]{w: w, info: callInfo{flag: fl, key: key, ec: ec, tc: tc, start: time.Now()}}
	authSide, otherSide := &wc.ctrl, &wc.cand
	if authIsNew {
		authSide, otherSide = otherSide, authSide
	}
	res, err := wc.runAuth(ctx, auth, req, authSide, otherSide)
	if err != nil {
		otherSide.status = envelope.StatusSkipped
		workers.do(wc)
		return res, err
	}
	w.runOther(ctx, other, req, otherSide, wc)
	workers.do(wc)
	return res, err
}

// Stats returns the Writer's counters.
func (w *Writer[Req, Res]) Stats() Stats { return w.c.stats() }

// Wait waits until the pair of every call that has returned so far has been
// handed to the Publisher (or dropped), or ctx is done.
func (w *Writer[Req, Res]) Wait(ctx context.Context) error { return w.c.wait(ctx) }

type writeCall[Req, Res any] struct {
	w    *Writer[Req, Res]
	info callInfo
	ctrl side[Res] // always Old
	cand side[Res] // always New
}

// run completes the pair on a pooled goroutine.
func (wc *writeCall[Req, Res]) run() { wc.finish() }

func (wc *writeCall[Req, Res]) finish() {
	finish(wc.w.c, &wc.info, &wc.ctrl, &wc.cand, wc.w.compare)
}

// runAuth runs the authoritative write. On a panic it records it, marks the
// other side skipped, publishes the pair and re-raises the panic.
func (wc *writeCall[Req, Res]) runAuth(ctx context.Context, fn Func[Req, Res], req Req, s, other *side[Res]) (res Res, err error) {
	start := time.Now()
	normal := false
	defer func() {
		if normal {
			return
		}
		p := recover() // nil for runtime.Goexit, which then carries on
		wc.w.c.n.panics.Add(1)
		s.recordPanic(p, time.Since(start))
		other.status = envelope.StatusSkipped
		workers.do(wc)
		if p != nil {
			panic(p)
		}
	}()
	res, err = fn(ctx, req)
	normal = true
	s.record(nil, res, err, time.Since(start))
	if wc.w.c.opts.snapshot {
		s.snapshot()
	}
	return res, err
}

// runOther runs the non-authoritative write on the caller's goroutine,
// recovering a panic, and records it in s. wc is nil for an unsampled call;
// it is used only if the function calls runtime.Goexit, to publish the pair
// before the goroutine ends.
func (w *Writer[Req, Res]) runOther(ctx context.Context, fn Func[Req, Res], req Req, s *side[Res], wc *writeCall[Req, Res]) {
	c := w.c
	start := time.Now()
	// The deadline is kept by the shared clock: no timer per call.
	octx := newDeadlineCtx(ctx, start.Add(c.opts.timeout), nil)
	defer octx.release()
	normal := false
	defer func() {
		if normal {
			return
		}
		p := recover()
		c.n.panics.Add(1)
		s.recordPanic(p, time.Since(start))
		if p == nil && wc != nil { // runtime.Goexit: the caller never gets its result
			workers.do(wc)
		}
	}()
	res, err := fn(octx, req)
	normal = true
	s.record(octx, res, err, time.Since(start))
	if s.status == envelope.StatusTimeout {
		c.n.timeouts.Add(1)
	}
}
