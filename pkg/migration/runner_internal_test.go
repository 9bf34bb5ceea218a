package migration

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

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
