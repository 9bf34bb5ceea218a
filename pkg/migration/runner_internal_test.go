package migration

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/parityhq/parity/internal/testutil"
	"github.com/parityhq/parity/pkg/envelope"
)

type shadowFlag struct{}

func (shadowFlag) StringValueDetails(context.Context, string, string, openfeature.EvaluationContext, ...openfeature.Option) (openfeature.StringEvaluationDetails, error) {
	return openfeature.StringEvaluationDetails{Value: "shadow"}, nil
}

// countingPublisher signals every pair it is given.
type countingPublisher struct{ got chan struct{} }

func (p countingPublisher) Publish(*envelope.Pair) bool { p.got <- struct{}{}; return true }

// Calls one after another reuse the pool's goroutines: a thousand compared
// reads start a handful of goroutines, not a thousand (#17: no goroutine
// per call where a pool serves).
func TestReadsReuseGoroutines(t *testing.T) {
	pub := countingPublisher{got: make(chan struct{}, 1)}
	fn := func(_ context.Context, id int) (int, error) { return id, nil }
	r, err := NewReader(Config[int, int]{Experiment: "e", Operation: "o", Flags: shadowFlag{}, FlagKey: "f", Publisher: pub, Old: fn, New: fn})
	if err != nil {
		t.Fatal(err)
	}
	ec := openfeature.NewEvaluationContext("u", nil)
	before := workers.spawned.Load()
	const calls = 1000
	for i := range calls {
		if _, err := r.Read(context.Background(), ec, i); err != nil {
			t.Fatal(err)
		}
		select {
		case <-pub.got: // the pair is in: the pooled goroutines are idle again
		case <-time.After(10 * time.Second):
			t.Fatalf("call %d: no pair", i)
		}
	}
	// A goroutine idle for workerIdle exits, so a machine too busy to run
	// the next call within it starts another; a tenth is far from one a call.
	if n := workers.spawned.Load() - before; n > calls/10 {
		t.Errorf("%d goroutines started for %d calls, want a few reused ones", n, calls)
	}
}

func TestDeadlineCtx(t *testing.T) {
	t.Run("deadline", func(t *testing.T) {
		var expired atomic.Int32
		ended := make(chan struct{})
		ctx := newDeadlineCtx(context.Background(), time.Now().Add(20*time.Millisecond), func(c *deadlineCtx) {
			expired.Add(1)
			close(ended)
		})
		child, cancel := context.WithCancel(ctx)
		defer cancel()
		if d, ok := ctx.Deadline(); !ok || d != ctx.deadline {
			t.Errorf("Deadline = %v, %v", d, ok)
		}
		<-ended
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Errorf("Err = %v, want DeadlineExceeded", ctx.Err())
		}
		<-child.Done() // a derived context follows
		if !errors.Is(child.Err(), context.DeadlineExceeded) {
			t.Errorf("child Err = %v, want DeadlineExceeded", child.Err())
		}
		ctx.release()
		if expired.Load() != 1 || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Errorf("expired %d times, Err %v after release", expired.Load(), ctx.Err())
		}
	})
	t.Run("released first", func(t *testing.T) {
		ctx := newDeadlineCtx(context.Background(), time.Now().Add(time.Hour), func(*deadlineCtx) { t.Error("expired on release") })
		child, cancel := context.WithCancel(ctx)
		defer cancel()
		ctx.release()
		<-child.Done()
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Errorf("Err = %v, want Canceled", ctx.Err())
		}
		ctx.clock.mu.Lock()
		index := ctx.index
		ctx.clock.mu.Unlock()
		if index != -1 {
			t.Errorf("released context still on the clock at %d", index)
		}
	})
	t.Run("parent cancelled", func(t *testing.T) {
		parent, cancel := context.WithCancel(context.WithValue(context.Background(), shadowFlag{}, "v"))
		ended := make(chan struct{})
		ctx := newDeadlineCtx(parent, time.Now().Add(time.Hour), func(*deadlineCtx) { close(ended) })
		defer ctx.release()
		if ctx.Value(shadowFlag{}) != "v" {
			t.Error("the parent's values are lost")
		}
		cancel()
		<-ended
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Errorf("Err = %v, want Canceled", ctx.Err())
		}
	})
	t.Run("earlier parent deadline", func(t *testing.T) {
		d := time.Now().Add(time.Minute)
		parent, cancel := context.WithDeadline(context.Background(), d)
		defer cancel()
		ctx := newDeadlineCtx(parent, d.Add(time.Hour), nil)
		defer ctx.release()
		if got, _ := ctx.Deadline(); !got.Equal(d) {
			t.Errorf("Deadline = %v, want the parent's %v", got, d)
		}
	})
	t.Run("many deadlines, one clock", func(t *testing.T) {
		now := time.Now()
		var ctxs []*deadlineCtx
		for i := range 50 {
			// Out of order, so the clock's timer is reset to earlier ones.
			ctxs = append(ctxs, newDeadlineCtx(context.Background(), now.Add(time.Duration(50-i)*time.Millisecond), nil))
		}
		for _, c := range ctxs {
			<-c.Done()
			if !errors.Is(c.Err(), context.DeadlineExceeded) {
				t.Fatalf("Err = %v", c.Err())
			}
			c.release()
		}
	})
}

// A compared read leaves a readCall for a later one, allocated by the pooled
// goroutine that ran its other side (#17: the caller's path allocates
// nothing that a pool serves).
func TestReadsLeaveSpareCalls(t *testing.T) {
	const calls = 20
	pub := countingPublisher{got: make(chan struct{}, calls)}
	old := func(_ context.Context, id int) (int, error) { return id, nil }
	release := make(chan struct{})
	slow := func(_ context.Context, id int) (int, error) { <-release; return id, nil }
	r, err := NewReader(Config[int, int]{Experiment: "e", Operation: "o", Flags: shadowFlag{}, FlagKey: "f", Publisher: pub, Old: old, New: slow})
	if err != nil {
		t.Fatal(err)
	}
	ec := openfeature.NewEvaluationContext("u", nil)
	// All the calls are in flight before any other side returns, so none
	// of them finds a spare; each of their pooled goroutines leaves one.
	for i := range calls {
		if _, err := r.Read(context.Background(), ec, i); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	for range calls {
		<-pub.got
	}
	// The race detector's sync.Pool drops a quarter of what it is given;
	// of twenty, some are kept all the same.
	testutil.Eventually(t, 5*time.Second, func() string {
		rc, _ := r.spare.Get().(*readCall[int, int])
		if rc == nil {
			return "no spare readCall"
		}
		if rc.r != r || rc.state.Load() != 0 || rc.info.flag.stage != "" || rc.authDone != nil {
			return fmt.Sprintf("spare readCall not fresh: %+v", rc)
		}
		return ""
	})
}

type funcJob func()

func (f funcJob) run() { f() }

// A pooled goroutine that takes a job while none waits starts one to wait
// in its place, before it runs the job, so that the next call hands its job
// over rather than starting a goroutine on its own path.
func TestPoolStartsAWaiter(t *testing.T) {
	p := &pool{jobs: make(chan job)}
	running, release := make(chan struct{}), make(chan struct{})
	p.do(funcJob(func() { close(running); <-release }))
	<-running
	defer close(release)
	if n := p.spawned.Load(); n != 2 {
		t.Errorf("%d goroutines started for the first job, want 2 (its own and one waiting)", n)
	}
}
