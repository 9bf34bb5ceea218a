package migration

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/parityhq/parity/pkg/envelope"
)

// Reader runs one migrating read. Its methods are safe for concurrent use.
type Reader[Req, Res any] struct {
	c       *core
	old     Func[Req, Res]
	new     Func[Req, Res]
	compare func(Res, Res) bool
	// spare holds readCalls allocated by the pooled goroutines, off the
	// caller's path, one for each compared call they served: a compared
	// call takes one instead of allocating. A readCall is never reused; the
	// pool only moves its allocation off the caller's path, where one that
	// has to fetch a fresh span from the heap (once in 16 or so) took tens
	// of µs on a busy machine, and was B4's p99.
	spare sync.Pool
}

// NewReader returns a Reader for cfg. It fails with an error wrapping
// [ErrInvalidOption] when a field of cfg or an option is invalid.
func NewReader[Req, Res any](cfg Config[Req, Res], opts ...Option) (*Reader[Req, Res], error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c, err := newCore(cfg.Experiment, cfg.Operation, envelope.KindRead, cfg.Flags, cfg.FlagKey, cfg.Publisher, opts)
	if err != nil {
		return nil, err
	}
	return &Reader[Req, Res]{c: c, old: cfg.Old, new: cfg.New, compare: cfg.Compare}, nil
}

// Read serves one read the way the stage, evaluated from the flag for ec,
// says, and returns exactly what the authoritative path returned: Old in the
// off, freeze, dualwrite and shadow stages, New in the live, rampdown and
// complete stages. A panic in the authoritative path reaches the caller
// unchanged (re-raised with its value after it has been recorded).
//
// Only the shadow and live stages compare: Read then starts the other path
// on a pooled goroutine, with a context that carries ctx's values and the
// [Timeout] deadline (but not ctx's cancellation unless [CancelWithCaller]
// is set), runs the authoritative path on the caller's goroutine, and
// returns as soon as the authoritative path has. The other path's result,
// error, panic or latency never reaches the caller. The pair is built,
// encoded and published after both sides are in, off the caller's path.
//
// A non-authoritative path that ignores its context cannot be stopped: at
// the deadline Parity records it as "timeout", publishes the pair and stops
// waiting, but the function's goroutine lives on until the function returns
// (bounded in number by [MaxInFlight]). Parity's own goroutines end by the
// deadline.
//
// In the other stages, and for calls left out of the sample, Read calls the
// authoritative path directly and nothing else.
func (r *Reader[Req, Res]) Read(ctx context.Context, ec openfeature.EvaluationContext, req Req) (Res, error) {
	c := r.c
	c.n.calls.Add(1)
	fl := c.stage(ctx, ec)
	var auth, other Func[Req, Res]
	switch fl.stage {
	case envelope.StageShadow:
		auth, other = r.old, r.new
	case envelope.StageLive:
		auth, other = r.new, r.old
	case envelope.StageRampDown, envelope.StageComplete:
		return r.new(ctx, req)
	default: // off, freeze, dualwrite
		return r.old(ctx, req)
	}
	c.n.offered.Add(1)
	key, tc := targetingKey(ctx, ec)
	if !c.sampled(ctx, key) {
		c.n.sampledOut.Add(1)
		return auth(ctx, req)
	}
	if c.n.inFlight.Add(1) > c.opts.maxInFlight {
		c.n.inFlight.Add(-1)
		c.n.dropped.Add(1)
		return auth(ctx, req)
	}
	rc, _ := r.spare.Get().(*readCall[Req, Res])
	if rc == nil {
		rc = new(readCall[Req, Res])
	}
	rc.r, rc.info = r, callInfo{flag: fl, key: key, ec: ec, tc: tc, start: time.Now()}
	if fl.stage == envelope.StageLive {
		rc.auth, rc.other = &rc.cand, &rc.ctrl
	} else {
		rc.auth, rc.other = &rc.ctrl, &rc.cand
	}
	// Everything else about the other side, its context included, is set
	// up on a pooled goroutine.
	rc.parent, rc.otherFn, rc.req = ctx, other, req
	workers.do(rc)
	return rc.runAuth(ctx, auth, req)
}

// Stats returns the Reader's counters.
func (r *Reader[Req, Res]) Stats() Stats { return r.c.stats() }

// Wait waits until the pair of every call that has returned so far has been
// handed to the Publisher (or dropped), or ctx is done. Call it before
// closing the Publisher at shutdown. It returns at the latest [Timeout] after
// the last of those calls returned.
func (r *Reader[Req, Res]) Wait(ctx context.Context) error { return r.c.wait(ctx) }

// The bits of readCall.state.
const (
	authBit    = 1 // the authoritative side is in
	otherBit   = 2 // the other side is in (or was abandoned at its timeout)
	abandonBit = 4 // the other side stopped waiting for the authoritative one
)

var errAbandoned = errors.New("migration: abandoned: the caller's context was cancelled")

// readCall is one compared read. Of the caller and the other side's
// goroutine, the one that completes the pair builds and publishes it,
// except that the caller never does so inline: when the other side gave up
// waiting for it (the authoritative side outlasted the timeout), the caller
// hands it to the pool. The caller allocates only this struct.
type readCall[Req, Res any] struct {
	r     *Reader[Req, Res]
	info  callInfo
	ctrl  side[Res] // always Old
	cand  side[Res] // always New
	auth  *side[Res]
	other *side[Res]
	state atomic.Int32
	// claimed is set by whichever records the other side's outcome first:
	// its function returning, or its context ending.
	claimed atomic.Bool
	// authDone is made by the other side, before it sets otherBit, when it
	// has to wait for the authoritative side; the caller closes it.
	authDone chan struct{}
	// What the pooled goroutine runs: the other side's function, with the
	// caller's context (for its values) and request.
	parent  context.Context
	otherFn Func[Req, Res]
	req     Req
}

// run runs the other side on a pooled goroutine.
func (rc *readCall[Req, Res]) run() {
	parent, fn, req := rc.parent, rc.otherFn, rc.req
	rc.parent, rc.otherFn = nil, nil
	r := rc.r
	rc.runOther(parent, fn, req)
	// The next call's readCall, allocated here rather than by its caller.
	next := new(readCall[Req, Res])
	*next = readCall[Req, Res]{r: r}
	r.spare.Put(next)
}

// readFinish is a readCall whose job is to complete its pair.
type readFinish[Req, Res any] readCall[Req, Res]

func (f *readFinish[Req, Res]) run() { (*readCall[Req, Res])(f).finish() }

func (rc *readCall[Req, Res]) runAuth(ctx context.Context, fn Func[Req, Res], req Req) (res Res, err error) {
	s := rc.auth
	start := rc.info.start
	normal := false
	defer func() {
		if normal {
			return
		}
		p := recover() // nil for runtime.Goexit, which then carries on
		rc.r.c.n.panics.Add(1)
		s.recordPanic(p, time.Since(start))
		rc.authFinished()
		if p != nil {
			panic(p)
		}
	}()
	res, err = fn(ctx, req)
	normal = true
	s.record(nil, res, err, time.Since(start))
	if rc.r.c.opts.snapshot {
		s.snapshot()
	}
	rc.authFinished()
	return res, err
}

func (rc *readCall[Req, Res]) authFinished() {
	old := rc.state.Or(authBit)
	switch {
	case old&abandonBit != 0:
		workers.do((*readFinish[Req, Res])(rc))
	case old&otherBit != 0:
		close(rc.authDone) // the other side is waiting for us
	}
}

// runOther runs the non-authoritative side on a pooled goroutine. Whichever
// comes first, the function's return or the context's end, records the
// side's outcome.
func (rc *readCall[Req, Res]) runOther(parent context.Context, fn Func[Req, Res], req Req) {
	c := rc.r.c
	s := rc.other
	if !c.opts.cancelWithCtx {
		parent = context.WithoutCancel(parent)
	}
	// The deadline is the call's start plus the timeout, kept by the shared
	// clock (no timer of its own); the side is timed from its own start,
	// which the pool's dispatcher may make up to about a tick later than
	// the call's, so that its latency compares fairly with the caller's.
	start := time.Now()
	ctx := newDeadlineCtx(parent, rc.info.start.Add(c.opts.timeout), func(ctx *deadlineCtx) {
		if !rc.claimed.CompareAndSwap(false, true) {
			return
		}
		s.dur = time.Since(start)
		if ctx.Err() == context.DeadlineExceeded {
			c.n.timeouts.Add(1)
			s.status = envelope.StatusTimeout
			s.msg = fmt.Sprintf("migration: no answer within %v; abandoned", c.opts.timeout)
		} else {
			s.status, s.err = envelope.StatusError, errAbandoned
		}
		rc.otherFinished(ctx.Done())
	})
	var (
		res    Res
		err    error
		dur    time.Duration
		normal bool
	)
	defer func() {
		var p any
		if !normal {
			p = recover()
			c.n.panics.Add(1)
		}
		c.n.inFlight.Add(-1)
		if rc.claimed.CompareAndSwap(false, true) {
			if normal {
				s.record(ctx, res, err, dur)
				if s.status == envelope.StatusTimeout {
					c.n.timeouts.Add(1)
				}
			} else {
				s.recordPanic(p, time.Since(start))
			}
			rc.otherFinished(ctx.Done())
		}
		ctx.release()
	}()
	res, err = fn(ctx, req)
	dur = time.Since(start)
	normal = true
}

// otherFinished is called once the other side's outcome is recorded. If the
// authoritative side is in, it completes the pair; otherwise it waits for it
// until deadline and then leaves the pair to the caller.
func (rc *readCall[Req, Res]) otherFinished(deadline <-chan struct{}) {
	rc.authDone = make(chan struct{})
	if rc.state.Or(otherBit)&authBit != 0 {
		rc.finish()
		return
	}
	select {
	case <-rc.authDone:
		rc.finish()
		return
	case <-deadline:
	}
	if rc.state.CompareAndSwap(otherBit, otherBit|abandonBit) {
		return // the caller completes the pair when its side is in
	}
	rc.finish() // the authoritative side came in meanwhile
}

func (rc *readCall[Req, Res]) finish() {
	finish(rc.r.c, &rc.info, &rc.ctrl, &rc.cand, rc.r.compare)
}
