package publish

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parityhq/parity/pkg/envelope"
)

// Defaults for the zero fields of [Options].
const (
	DefaultQueueSize  = 8192
	DefaultMaxPending = 4000
	DefaultAckTimeout = 5 * time.Second
)

// errReportBuffer is how many asynchronous errors may wait for [Options.OnError];
// beyond that they are counted as failures but not reported.
const errReportBuffer = 64

var (
	// ErrInvalidOption is wrapped by every error [New] returns for a bad
	// [Options] field.
	ErrInvalidOption = errors.New("publish: invalid option")
	// ErrClosed is wrapped by the error reported for pairs that were still
	// queued or awaiting an ack when the publisher stopped.
	ErrClosed = errors.New("publish: publisher closed")
)

// Options configures a [Publisher]. The zero value is valid.
type Options struct {
	// QueueSize is how many pairs may wait to be encoded and published.
	// Publish drops a pair when the queue is full. Zero means
	// DefaultQueueSize (8192); it must not be negative.
	QueueSize int
	// MaxPending is how many published pairs may await a JetStream ack at
	// once. When it is reached the background goroutine waits for a slot (at
	// most AckTimeout) and the queue absorbs new pairs meanwhile. Zero means
	// DefaultMaxPending (4000); it must not be negative.
	MaxPending int
	// AckTimeout is how long a published pair may await its JetStream ack
	// before it is counted as failed. Zero means DefaultAckTimeout (5s); it
	// must not be negative.
	AckTimeout time.Duration
	// OnError, if set, receives publishing errors: invalid pairs, refused or
	// unacknowledged publishes. It is called from a goroutine of the
	// publisher, never from Publish, and should return quickly: while it runs
	// no pair is published. Error texts name fields and subjects but never
	// contain a pair's values. Asynchronous errors are reported on a
	// best-effort basis (some are skipped under a flood of failures); Stats
	// counts every one.
	OnError func(error)
}

func (o Options) withDefaults() (Options, error) {
	switch {
	case o.QueueSize < 0:
		return o, fmt.Errorf("%w: QueueSize: must be >= 0", ErrInvalidOption)
	case o.MaxPending < 0:
		return o, fmt.Errorf("%w: MaxPending: must be >= 0", ErrInvalidOption)
	case o.AckTimeout < 0:
		return o, fmt.Errorf("%w: AckTimeout: must be >= 0", ErrInvalidOption)
	}
	if o.QueueSize == 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.MaxPending == 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.AckTimeout == 0 {
		o.AckTimeout = DefaultAckTimeout
	}
	return o, nil
}

// Stats counts what happened to the pairs offered to a [Publisher]. In every
// snapshot Offered == Enqueued + Dropped and
// Enqueued == Published + Failed + Pending.
type Stats struct {
	Offered   uint64 // calls to Publish
	Enqueued  uint64 // pairs accepted into the queue (Publish returned true)
	Dropped   uint64 // pairs refused: nil, queue full, or publisher closed
	Published uint64 // pairs acknowledged by JetStream, duplicates included
	Failed    uint64 // pairs that were invalid, refused, unacknowledged in time, or abandoned by Close
	Pending   uint64 // pairs queued or awaiting an ack
}

// Publisher publishes pairs to JetStream from a background goroutine. Its
// methods are safe for concurrent use.
type Publisher struct {
	opts      Options
	js        jetstream.JetStream
	stallWait jetstream.PublishOpt

	queue   chan *envelope.Pair // never closed, so a send can never panic
	flushes chan chan struct{}
	errs    chan error    // asynchronous errors for OnError
	quit    chan struct{} // closed by Close
	stopped chan struct{} // closed when the goroutine has finished

	closed   atomic.Bool // set by Close: Publish drops
	stopping atomic.Bool // set by the goroutine before its last drain of the queue
	quitOnce sync.Once

	enqueued  atomic.Uint64 // raised before the send, so it is never below the completed count
	dropped   atomic.Uint64
	published atomic.Uint64
	failed    atomic.Uint64

	firstSend time.Time // when the goroutine first called PublishMsgAsync

	mu       sync.Mutex
	seq      uint64               // sequence of the last pair handed to JetStream
	inflight map[*nats.Msg]uint64 // awaiting an ack, by sequence
	waiters  []*flushWaiter
}

// flushWaiter is a Flush waiting for left in-flight pairs with sequence
// numbers up to upTo.
type flushWaiter struct {
	upTo uint64
	left int
	done chan struct{}
}

// New returns a Publisher sending on nc and starts its background goroutine.
// Call [Publisher.Close] to stop it. New does not create the stream.
func New(nc *nats.Conn, opts Options) (*Publisher, error) {
	if nc == nil {
		return nil, fmt.Errorf("%w: nil *nats.Conn", ErrInvalidOption)
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Publisher{
		opts:      opts,
		stallWait: jetstream.WithStallWait(opts.AckTimeout),
		queue:     make(chan *envelope.Pair, opts.QueueSize),
		flushes:   make(chan chan struct{}),
		errs:      make(chan error, errReportBuffer),
		quit:      make(chan struct{}),
		stopped:   make(chan struct{}),
		inflight:  make(map[*nats.Msg]uint64),
	}
	p.js, err = jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(opts.MaxPending),
		jetstream.WithPublishAsyncTimeout(opts.AckTimeout),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, m *nats.Msg, _ *jetstream.PubAck) {
			p.complete(m, nil)
		}),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			p.complete(m, err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("publish: jetstream: %w", err)
	}
	go p.run()
	return p, nil
}

// Discard returns a Publisher connected to nothing, for tests and for
// applications running with Parity switched off: Publish drops and counts
// every pair, and Flush and Close return nil at once.
func Discard() *Publisher {
	p := &Publisher{quit: make(chan struct{}), stopped: make(chan struct{})}
	p.closed.Store(true)
	p.quitOnce.Do(func() { close(p.quit) })
	close(p.stopped)
	return p
}

// Publish offers pair for publishing and returns at once. It takes ownership
// of pair: the caller must not use it afterwards. It returns false, and counts
// a drop, when pair is nil, the queue is full or the publisher is closed.
// Publish never blocks, never panics and allocates nothing.
func (p *Publisher) Publish(pair *envelope.Pair) bool {
	if pair == nil || p.closed.Load() {
		p.dropped.Add(1)
		return false
	}
	p.enqueued.Add(1)
	select {
	case p.queue <- pair:
	default:
		p.enqueued.Add(^uint64(0))
		p.dropped.Add(1)
		return false
	}
	if p.stopping.Load() {
		// The goroutine may already have made its last pass over the queue.
		p.abandonQueued()
	}
	return true
}

// Flush waits until every pair enqueued before the call has been
// acknowledged or has failed, or ctx ends. It returns ctx's error in the
// latter case. Once Flush returns nil, [Publisher.Stats] counts those pairs
// as Published or Failed.
func (p *Publisher) Flush(ctx context.Context) error {
	if err := p.flushWait(ctx); err != nil {
		return fmt.Errorf("publish: flush: %w", err)
	}
	return nil
}

func (p *Publisher) flushWait(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case p.flushes <- done:
	case <-p.stopped:
		return nil // the goroutine has settled every pair
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Close makes Publish drop every further pair, flushes, and stops the
// background goroutine. Pairs still queued or awaiting an ack when ctx ends
// are counted as failed. Close returns ctx's error if ctx ended first; the
// goroutine then stops as soon as the call it is in returns (at most
// AckTimeout while JetStream is slow). Once Close has returned nil, Pending
// is zero. Close may be called more than once.
func (p *Publisher) Close(ctx context.Context) error {
	p.closed.Store(true)
	err := p.flushWait(ctx)
	p.quitOnce.Do(func() { close(p.quit) })
	if err == nil {
		select {
		case <-p.stopped:
		case <-ctx.Done():
			err = context.Cause(ctx)
		}
	}
	if err != nil {
		return fmt.Errorf("publish: close: %w", err)
	}
	return nil
}

// Stats returns the publisher's counters. See [Stats] for the invariants.
func (p *Publisher) Stats() Stats {
	// Read the completed counts before the enqueued one: a pair is enqueued
	// before it can complete, so Pending never underflows.
	published := p.published.Load()
	failed := p.failed.Load()
	enqueued := p.enqueued.Load()
	dropped := p.dropped.Load()
	return Stats{
		Offered:   enqueued + dropped,
		Enqueued:  enqueued,
		Dropped:   dropped,
		Published: published,
		Failed:    failed,
		Pending:   enqueued - published - failed,
	}
}

// pollInterval is how often the goroutine looks at the queue while pairs
// keep arriving. Polling instead of waiting on the queue means Publish
// seldom finds a parked receiver to wake, which would cost the caller a
// microsecond or more; it delays each pair by at most this much.
const pollInterval = time.Millisecond

func (p *Publisher) run() {
	poll := time.NewTimer(pollInterval)
	poll.Stop()
	for {
		// Idle: wait for work.
		select {
		case pair := <-p.queue:
			p.send(pair)
		case done := <-p.flushes:
			p.flush(done)
		case err := <-p.errs:
			p.report(err)
		case <-p.quit:
			p.stop()
			return
		}
		// Busy: poll the queue until a poll finds it empty.
		for p.sendQueued() > 0 {
			poll.Reset(pollInterval)
			select {
			case <-poll.C:
			case done := <-p.flushes:
				poll.Stop()
				p.flush(done)
			case err := <-p.errs:
				poll.Stop()
				p.report(err)
			case <-p.quit:
				poll.Stop()
				p.stop()
				return
			}
		}
	}
}

// sendQueued sends the pairs queued now, but not those enqueued meanwhile,
// and returns how many it sent.
func (p *Publisher) sendQueued() int {
	n := len(p.queue)
	for i := range n {
		select {
		case pair := <-p.queue:
			p.send(pair)
		default: // only Publish racing with stop receives elsewhere
			return i
		}
	}
	return n
}

// send encodes pair and hands it to JetStream.
func (p *Publisher) send(pair *envelope.Pair) {
	if pair.ID == "" {
		pair.ID = envelope.NewID()
	}
	if pair.Time.IsZero() {
		pair.Time = time.Now().UTC()
	}
	data, err := envelope.Marshal(pair) // fills Version and validates
	if err != nil {
		p.failed.Add(1)
		p.report(invalidPair(err))
		return
	}
	m := nats.NewMsg(pair.Subject())
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, pair.ID)

	// Register before publishing: the ack may arrive before PublishMsgAsync
	// returns.
	p.mu.Lock()
	p.seq++
	p.inflight[m] = p.seq
	p.mu.Unlock()
	if p.firstSend.IsZero() {
		p.firstSend = time.Now()
	}
	if _, err := p.js.PublishMsgAsync(m, p.stallWait); err != nil {
		p.complete(m, err)
	}
}

// complete counts the outcome of m. It runs on the ack handler's goroutine
// and, for timeouts, under the jetstream publisher's lock, so it must not
// block. A message is counted once, however many times it is reported.
func (p *Publisher) complete(m *nats.Msg, err error) {
	p.mu.Lock()
	seq, ok := p.inflight[m]
	if !ok {
		p.mu.Unlock()
		return
	}
	delete(p.inflight, m)
	if err == nil {
		p.published.Add(1)
	} else {
		p.failed.Add(1)
	}
	p.waiters = release(p.waiters, seq)
	p.mu.Unlock()

	if err != nil && p.opts.OnError != nil {
		select {
		case p.errs <- fmt.Errorf("publish: %s: %w", m.Subject, err):
		default: // flooded: counted, not reported
		}
	}
}

// release counts one completed pair of sequence seq against the waiters
// and returns those still waiting. p.mu must be held.
func release(waiters []*flushWaiter, seq uint64) []*flushWaiter {
	kept := waiters[:0]
	for _, w := range waiters {
		if seq <= w.upTo {
			w.left--
		}
		if w.left == 0 {
			close(w.done)
			continue
		}
		kept = append(kept, w)
	}
	clear(waiters[len(kept):])
	return kept
}

// flush publishes what is queued now (which includes everything enqueued
// before the Flush call) and then arranges for done to be closed when every
// pair in flight has completed.
func (p *Publisher) flush(done chan struct{}) {
	p.sendQueued()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.inflight) == 0 {
		close(done)
		return
	}
	p.waiters = append(p.waiters, &flushWaiter{upTo: p.seq, left: len(p.inflight), done: done})
}

// stop settles every pair: those still queued or awaiting an ack are
// counted as failed, and acks arriving later are ignored.
func (p *Publisher) stop() {
	p.stopping.Store(true) // from now on Publish cleans up after itself
	n := p.abandonQueued()
	p.mu.Lock()
	n += uint64(len(p.inflight))
	p.failed.Add(uint64(len(p.inflight)))
	clear(p.inflight)
	for _, w := range p.waiters {
		close(w.done)
	}
	p.waiters = nil
	p.mu.Unlock()
	p.cleanupJetStream()

	for drained := false; !drained; {
		select {
		case err := <-p.errs:
			p.report(err)
		default:
			drained = true
		}
	}
	if n > 0 {
		p.report(fmt.Errorf("%w: %d pairs queued or awaiting an ack counted as failed", ErrClosed, n))
	}
	close(p.stopped)
}

// statusGoroutineGrace is how long after the first async publish
// cleanupJetStream waits before calling CleanupPublisher; see there.
const statusGoroutineGrace = 10 * time.Millisecond

// cleanupJetStream drops the jetstream publisher's reply subscription and
// its two goroutines. Workaround for nats.go v1.55.0: the first
// PublishMsgAsync starts a goroutine (resetPendingAcksOnReconnect) that reads
// the publisher's status channel only once it is scheduled; if
// CleanupPublisher has nil-ed that field by then, the goroutine blocks on a
// nil channel forever. So a publisher closed right after its first publish
// waits until that goroutine has surely started.
func (p *Publisher) cleanupJetStream() {
	if !p.firstSend.IsZero() {
		if d := statusGoroutineGrace - time.Since(p.firstSend); d > 0 {
			time.Sleep(d)
		}
	}
	p.js.CleanupPublisher()
}

// abandonQueued counts every pair left in the queue as failed and returns
// how many there were.
func (p *Publisher) abandonQueued() (n uint64) {
	for {
		select {
		case <-p.queue:
			p.failed.Add(1)
			n++
		default:
			return n
		}
	}
}

func (p *Publisher) report(err error) {
	if p.opts.OnError != nil {
		p.opts.OnError(err)
	}
}

// invalidPair turns an error from envelope.Marshal into one that names the
// offending field but, unlike the envelope's own text, no value.
func invalidPair(err error) error {
	var fe *envelope.FieldError
	switch {
	case errors.As(err, &fe):
		return &redactedError{msg: "publish: invalid pair: field " + fe.Field, err: err}
	case errors.Is(err, envelope.ErrTooLarge):
		return fmt.Errorf("publish: invalid pair: %w", err)
	default:
		return &redactedError{msg: "publish: encode pair", err: err}
	}
}

// redactedError shows only msg but keeps err in the chain for errors.Is and
// errors.As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
