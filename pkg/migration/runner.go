package migration

import (
	"container/heap"
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// job is work handed to a pooled goroutine.
type job interface{ run() }

// workerIdle is how long a pooled goroutine waits for another job before it
// exits, so none linger once calls stop.
const workerIdle = 100 * time.Millisecond

// workers runs the work Parity does beside a call — the other side of a
// read, the building and publishing of a pair — on reused goroutines.
//
// A call only appends its job to a queue, under a lock held for the
// append: it wakes no thread. A dispatching goroutine takes the queue every
// dispatchTick and hands each job to a goroutine waiting for one if there
// is one, and only otherwise to a new goroutine; once it has found the
// queue empty for dispatchIdle it exits, and the next call starts it again.
// So while calls keep coming, a call neither starts a goroutine nor wakes a
// thread on its own path (waking an idle thread costs the caller a futex
// call, several µs at the tail), and the other side starts within about a
// tick of the call (a millisecond at most where the runtime's timers are
// that coarse). Jobs never wait for one another: each runs on its own
// goroutine, so a user function that blocks delays nothing else.
var workers = &pool{jobs: make(chan job)}

// dispatchTick is how often the dispatcher takes the queue while calls
// come; dispatchIdle is how long it finds the queue empty before it exits.
const (
	dispatchTick = 250 * time.Microsecond
	dispatchIdle = 50 * time.Millisecond
)

type pool struct {
	jobs    chan job
	idle    atomic.Int32  // goroutines waiting for a job
	spawned atomic.Uint64 // goroutines started, for tests

	mu      sync.Mutex
	queue   []job
	running bool // a dispatcher runs
}

// do queues j to start on a pooled goroutine, starting the dispatcher if
// none runs.
func (p *pool) do(j job) {
	p.mu.Lock()
	p.queue = append(p.queue, j)
	start := !p.running
	p.running = true
	p.mu.Unlock()
	if start {
		go p.dispatch()
	}
}

// dispatch starts the queued jobs every dispatchTick until the queue has
// stayed empty for dispatchIdle.
func (p *pool) dispatch() {
	var batch []job
	empty := 0
	for {
		p.mu.Lock()
		if len(p.queue) > 0 {
			empty = 0
		} else if empty++; time.Duration(empty)*dispatchTick >= dispatchIdle {
			p.running = false
			p.mu.Unlock()
			return
		}
		batch, p.queue = p.queue, batch[:0]
		p.mu.Unlock()
		for i, j := range batch {
			p.start(j)
			batch[i] = nil
		}
		time.Sleep(dispatchTick)
	}
}

// start hands j to a waiting goroutine, or to a new one.
func (p *pool) start(j job) {
	select {
	case p.jobs <- j:
	default:
		p.spawned.Add(1)
		go p.work(j)
	}
}

// work runs j, if any, and then the jobs handed to it, until it has been
// idle for workerIdle. A goroutine that takes a job when no other is
// waiting starts one to wait in its place, so that the next call finds one
// and hands its job over instead of starting a goroutine on its own path
// (which, with the new goroutine's stack, costs the caller tens of µs now
// and then).
func (p *pool) work(j job) {
	idle := time.NewTimer(workerIdle) // one per goroutine, reset per job
	defer idle.Stop()
	for {
		if j != nil {
			if p.idle.Load() == 0 {
				p.spawned.Add(1)
				go p.work(nil)
			}
			j.run()
			j = nil
		}
		idle.Reset(workerIdle)
		p.idle.Add(1)
		select {
		case j = <-p.jobs:
			p.idle.Add(-1)
		case <-idle.C:
			p.idle.Add(-1)
			return
		}
	}
}

// deadlineCtx is the context the non-authoritative side runs with: its
// parent's values (and cancellation, when the parent has one), and a
// deadline kept by the shared [clock] instead of a timer of its own.
type deadlineCtx struct {
	context.Context // the parent
	deadline        time.Time
	done            chan struct{}
	// expired, if set, runs on its own goroutine when the context ends by
	// its deadline or its parent, not when it is released.
	expired func(*deadlineCtx)

	mu         sync.Mutex
	err        error
	afters     []*afterFunc
	stopParent func() bool
	clock      *clock
	index      int // in the clock's heap; -1 when not in it; clock.mu
}

type afterFunc struct{ f func() }

// newDeadlineCtx returns a context ending at deadline, or when parent ends.
// Call release when the work is done.
func newDeadlineCtx(parent context.Context, deadline time.Time, expired func(*deadlineCtx)) *deadlineCtx {
	c := &deadlineCtx{Context: parent, deadline: deadline, done: make(chan struct{}), expired: expired, index: -1}
	if parent.Done() != nil {
		c.stopParent = context.AfterFunc(parent, func() { c.end(parent.Err(), true) })
	}
	c.clock = &clocks[nextClock.Add(1)%uint32(len(clocks))]
	c.clock.add(c)
	return c
}

func (c *deadlineCtx) Deadline() (time.Time, bool) {
	if d, ok := c.Context.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

func (c *deadlineCtx) Done() <-chan struct{} { return c.done }

func (c *deadlineCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// AfterFunc lets contexts derived from c (context.WithCancel(c), …) follow
// it without a goroutine each, as they follow the standard library's.
func (c *deadlineCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		go f()
		return func() bool { return false }
	}
	a := &afterFunc{f: f}
	c.afters = append(c.afters, a)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, b := range c.afters {
			if b == a {
				c.afters = append(c.afters[:i], c.afters[i+1:]...)
				return true
			}
		}
		return false
	}
}

// release ends c as finished (Canceled, like a standard context's cancel
// function) and takes it off the clock.
func (c *deadlineCtx) release() {
	c.clock.remove(c)
	if c.stopParent != nil {
		c.stopParent()
	}
	c.end(context.Canceled, false)
}

// end ends c with err once; expired says whether its deadline or its
// parent ended it.
func (c *deadlineCtx) end(err error, expired bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	close(c.done)
	afters := c.afters
	c.afters = nil
	c.mu.Unlock()
	for _, a := range afters {
		a.f() // the context package's: cancel a derived context
	}
	if expired && c.expired != nil {
		go c.expired(c)
	}
}

// clock ends deadline contexts at their deadlines with one timer for all of
// them, reset to the earliest deadline as contexts come and go.
type clock struct {
	mu    sync.Mutex
	h     ctxHeap
	timer *time.Timer
	armed time.Time // when the timer fires; zero when it is not set
}

// clocks are shared by every call, spread over a few so that calls on
// different threads seldom wait for each other's lock: one timer per clock,
// not per call.
var (
	clocks    [8]clock
	nextClock atomic.Uint32
)

func (k *clock) add(c *deadlineCtx) {
	k.mu.Lock()
	defer k.mu.Unlock()
	heap.Push(&k.h, c)
	if !k.armed.IsZero() && !k.armed.After(c.deadline) {
		// The timer fires first and sets itself for what is left. Calls
		// of one Reader have ever later deadlines, so a steady stream of
		// them touches the timer about once per Timeout, not per call.
		return
	}
	k.armed = c.deadline
	d := time.Until(c.deadline)
	if k.timer == nil {
		k.timer = time.AfterFunc(d, k.fire)
	} else {
		k.timer.Reset(d)
	}
}

func (k *clock) remove(c *deadlineCtx) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if c.index >= 0 {
		heap.Remove(&k.h, c.index)
	}
}

// fire ends every context whose deadline has passed and sets the timer for
// the next one.
func (k *clock) fire() {
	now := time.Now()
	var due []*deadlineCtx
	k.mu.Lock()
	for len(k.h) > 0 && !k.h[0].deadline.After(now) {
		due = append(due, heap.Pop(&k.h).(*deadlineCtx))
	}
	k.armed = time.Time{}
	if len(k.h) > 0 {
		k.armed = k.h[0].deadline
		k.timer.Reset(k.h[0].deadline.Sub(now))
	}
	k.mu.Unlock()
	for _, c := range due {
		c.end(context.DeadlineExceeded, true)
	}
}

// ctxHeap orders contexts by deadline.
type ctxHeap []*deadlineCtx

func (h ctxHeap) Len() int           { return len(h) }
func (h ctxHeap) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h ctxHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *ctxHeap) Push(x any) {
	c := x.(*deadlineCtx)
	c.index = len(*h)
	*h = append(*h, c)
}
func (h *ctxHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	old[len(old)-1] = nil
	c.index = -1
	*h = old[:len(old)-1]
	return c
}
