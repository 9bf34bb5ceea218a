package publish

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/natsnames"
)

// Defaults for the zero fields of [Options].
const (
	DefaultQueueSize  = 8192
	DefaultMaxPending = 4000
	DefaultAckTimeout = 5 * time.Second
	DefaultBatchPairs = 64
	DefaultBatchBytes = 256 << 10
	DefaultLinger     = 5 * time.Millisecond
)

// errReportBuffer is how many asynchronous errors may wait for
// [Options.OnError]; beyond that they are counted but not reported.
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
	// once. When it is reached the background goroutine waits for an ack
	// or a timeout to free a slot, and the queue absorbs new pairs
	// meanwhile. Zero means DefaultMaxPending (4000); it must not be
	// negative.
	MaxPending int
	// AckTimeout is how long a published pair may await its JetStream ack
	// before it is counted as failed with [jetstream.ErrAsyncPublishTimeout].
	// Zero means DefaultAckTimeout (5s); it must not be negative.
	AckTimeout time.Duration
	// BatchPairs is the most pairs packed into one message. Pairs waiting
	// in the queue for the same subject are sent together as one batch
	// envelope (wire-format version 2); a batch of one is sent as a plain
	// version-1 envelope. 1 sends every pair on its own, for verifiers
	// older than version 2. Zero means DefaultBatchPairs (64), or MaxPending
	// if that is smaller; it must be between 0 and [envelope.MaxBatchPairs]
	// and not above MaxPending.
	BatchPairs int
	// BatchBytes is the most encoded bytes in one batch message. A single
	// pair larger than this is sent on its own. Zero means
	// DefaultBatchBytes (256 KiB); it must be between 0 and
	// [envelope.MaxSize].
	BatchBytes int
	// Linger is the longest a pair waits for others to share its message.
	// A batch is sent as soon as it is full, when the queue has been
	// emptied and Linger has passed since its first pair, or on Flush.
	// Zero means DefaultLinger (5ms); it must not be negative.
	Linger time.Duration
	// Instance names this publisher in its reports, e.g. "orders-api-7f9c".
	// Defaults to the host name and process id.
	Instance string
	// ReportInterval is how often the publisher reports its [Stats] on
	// [ReportSubject] (core NATS, fire and forget), so the collector can show
	// every hook's drops. Defaults to 10s; negative turns reports off.
	ReportInterval time.Duration
	// OnError, if set, receives publishing errors: invalid pairs, refused or
	// unacknowledged publishes. It is called from the publisher's goroutine,
	// never from Publish, and should return quickly: while it runs no pair
	// is published. Error texts name fields and subjects but never contain
	// a pair's values. Errors that arrive asynchronously (acks) are reported
	// on a best-effort basis, skipped under a flood; Stats counts every one.
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
	case o.BatchPairs < 0 || o.BatchPairs > envelope.MaxBatchPairs:
		return o, fmt.Errorf("%w: BatchPairs: must be between 0 and %d", ErrInvalidOption, envelope.MaxBatchPairs)
	case o.BatchBytes < 0 || o.BatchBytes > envelope.MaxSize:
		return o, fmt.Errorf("%w: BatchBytes: must be between 0 and %d", ErrInvalidOption, envelope.MaxSize)
	case o.Linger < 0:
		return o, fmt.Errorf("%w: Linger: must be >= 0", ErrInvalidOption)
	}
	if o.BatchBytes == 0 {
		o.BatchBytes = DefaultBatchBytes
	}
	if o.Linger == 0 {
		o.Linger = DefaultLinger
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
	if o.BatchPairs == 0 {
		o.BatchPairs = min(DefaultBatchPairs, o.MaxPending)
	}
	if o.BatchPairs > o.MaxPending {
		return o, fmt.Errorf("%w: BatchPairs (%d) must not exceed MaxPending (%d)", ErrInvalidOption, o.BatchPairs, o.MaxPending)
	}
	if o.ReportInterval == 0 {
		o.ReportInterval = DefaultReportInterval
	}
	if o.Instance == "" {
		host, _ := os.Hostname()
		o.Instance = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	return o, nil
}

// ReportSubject is where publishers report their counters:
// [natsnames.HookReportSubject], where every NATS name lives.
const ReportSubject = natsnames.HookReportSubject

// DefaultReportInterval is how often a publisher reports its counters.
const DefaultReportInterval = 10 * time.Second

// Report is what a publisher sends on [ReportSubject]: its counters since it
// started, so a missed report loses nothing.
type Report struct {
	Instance string    `json:"instance"`
	Time     time.Time `json:"time"`
	Stats
}

// Stats counts what happened to the pairs offered to a [Publisher]. In every
// snapshot Offered == Enqueued + Dropped and
// Enqueued == Published + Failed + Pending.
type Stats struct {
	Offered   uint64 `json:"offered"`   // calls to Publish
	Enqueued  uint64 `json:"enqueued"`  // pairs accepted into the queue (Publish returned true)
	Dropped   uint64 `json:"dropped"`   // pairs refused: nil, queue full, or publisher closed
	Published uint64 `json:"published"` // pairs acknowledged by JetStream, duplicates included
	Failed    uint64 `json:"failed"`    // pairs invalid, refused, not acknowledged in time, or abandoned by Close
	Pending   uint64 `json:"pending"`   // pairs queued or awaiting an ack
	// Duplicates counts, within Published, pairs not sent because this
	// publisher had sent a pair with the same caller-given ID within
	// [RecentIDWindow]: they are already stored, as JetStream would say.
	Duplicates uint64 `json:"duplicates"`
}

// Add adds o to s, counter by counter: the totals of several publishers.
func (s *Stats) Add(o Stats) {
	s.Offered += o.Offered
	s.Enqueued += o.Enqueued
	s.Dropped += o.Dropped
	s.Published += o.Published
	s.Failed += o.Failed
	s.Pending += o.Pending
	s.Duplicates += o.Duplicates
}

// Publisher publishes pairs to JetStream from a background goroutine. Its
// methods are safe for concurrent use.
type Publisher struct {
	opts  Options
	nc    *nats.Conn
	sub   *nats.Subscription // receives the acks
	inbox string             // reply subject prefix: inbox + token

	queue   chan *envelope.Pair     // never closed, so a send can never panic
	slots   chan struct{}           // one element per pair awaiting an ack
	open    map[string]*openBatch   // batches being filled, by subject; goroutine only
	ordered []*openBatch            // scratch for openInOrder; goroutine only
	opened  uint64                  // batches opened; goroutine only
	spare   []*envelope.BatchWriter // writers not in use; goroutine only
	flushes chan chan struct{}
	errs    chan error    // asynchronous errors for OnError
	quit    chan struct{} // closed by Close
	stopped chan struct{} // closed when the goroutine has finished
	reports chan struct{} // closed when the reporting goroutine has finished

	closed    atomic.Bool // set by Close: Publish drops
	stopping  atomic.Bool // set by the goroutine before its last pass over the queue
	quitOnce  sync.Once
	abandoned uint64 // pairs dropped by send on quit; goroutine only

	recent     recentIDs // caller-given ids sent lately; goroutine only
	duplicates atomic.Uint64

	enqueued  atomic.Uint64 // raised before the send, so never below the completed count
	dropped   atomic.Uint64
	published atomic.Uint64
	failed    atomic.Uint64

	mu       sync.Mutex
	seq      uint64             // sequence number of the last pair published
	inflight map[string]*flight // awaiting an ack, by reply token
	waiters  []*flushWaiter
	buffers  [][]byte // encoded messages acknowledged, for reuse
}

// openBatch is a message being filled with the pairs of one subject.
type openBatch struct {
	subject string
	w       *envelope.BatchWriter
	since   time.Time // when its first pair was added
	order   uint64    // opening order
}

// maxSpareBuffers bounds the encoded-message buffers kept for reuse.
const maxSpareBuffers = 64

// flight is a message (one pair or a batch) awaiting its ack.
type flight struct {
	seq     uint64
	pairs   int    // how many pairs the message carries
	buf     []byte // the message's buffer, reused once it is acknowledged
	subject string
	timer   *time.Timer // fails the pair after AckTimeout
	// msg is kept for a retry: while a clustered stream elects a leader,
	// the server answers "no responders" and the pair is sent again (same
	// Nats-Msg-Id, so never stored twice) until AckTimeout.
	msg     *nats.Msg
	retries int
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
		opts:     opts,
		nc:       nc,
		inbox:    nc.NewInbox() + ".",
		queue:    make(chan *envelope.Pair, opts.QueueSize),
		slots:    make(chan struct{}, opts.MaxPending),
		flushes:  make(chan chan struct{}),
		errs:     make(chan error, errReportBuffer),
		quit:     make(chan struct{}),
		stopped:  make(chan struct{}),
		inflight: make(map[string]*flight),
		open:     make(map[string]*openBatch),
	}
	p.sub, err = nc.Subscribe(p.inbox+"*", p.onAck)
	if err != nil {
		return nil, fmt.Errorf("publish: subscribe for acks: %w", err)
	}
	go p.run()
	p.reports = make(chan struct{})
	go p.reportStats()
	return p, nil
}

// reportStats sends the publisher's counters every ReportInterval, and once
// more when it is closed. Reports are core NATS publishes: a lost one is
// replaced by the next, and none is ever on the application's path.
func (p *Publisher) reportStats() {
	defer close(p.reports)
	if p.opts.ReportInterval < 0 {
		return
	}
	send := func() {
		b, _ := json.Marshal(Report{Instance: p.opts.Instance, Time: time.Now().UTC(), Stats: p.Stats()}) // plain fields always marshal
		_ = p.nc.Publish(ReportSubject, b)
	}
	tick := time.NewTicker(p.opts.ReportInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			send()
		case <-p.stopped:
			send()
			return
		}
	}
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
// background goroutine. If ctx ends first, pairs still queued or awaiting an
// ack are counted as failed, and Close returns ctx's error; the goroutine
// then stops as soon as the publish it is in returns. Once Close has
// returned nil, Pending is zero, the goroutine has exited and the ack
// subscription is removed. Close may be called more than once.
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
	if err == nil && p.reports != nil {
		select {
		case <-p.reports:
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
		Duplicates: p.duplicates.Load(),
		Offered:    enqueued + dropped,
		Enqueued:   enqueued,
		Dropped:    dropped,
		Published:  published,
		Failed:     failed,
		Pending:    enqueued - published - failed,
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
	linger := time.NewTimer(p.opts.Linger)
	linger.Stop()
	for {
		// Idle: wait for work, or for an open batch's linger to end.
		var lingerC <-chan time.Time
		if oldest, ok := p.oldestOpen(); ok {
			linger.Reset(time.Until(oldest.Add(p.opts.Linger)))
			lingerC = linger.C
		}
		select {
		case pair := <-p.queue:
			p.add(pair)
		case <-lingerC:
		case done := <-p.flushes:
			p.flush(done)
		case err := <-p.errs:
			p.report(err)
		case <-p.quit:
			linger.Stop()
			p.stop()
			return
		}
		linger.Stop()
		// Busy: poll the queue until a poll finds it empty, sending the
		// batches that are full or have lingered long enough.
		for p.sendQueued() > 0 {
			p.sendDue(time.Now())
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
		p.sendDue(time.Now())
	}
}

// sendQueued adds the pairs queued now, but not those enqueued meanwhile,
// to their batches and returns how many it took.
func (p *Publisher) sendQueued() int {
	n := len(p.queue)
	for i := range n {
		select {
		case pair := <-p.queue:
			p.add(pair)
		default: // only Publish racing with stop receives elsewhere
			return i
		}
	}
	return n
}

// oldestOpen returns when the oldest open batch got its first pair.
func (p *Publisher) oldestOpen() (time.Time, bool) {
	var oldest time.Time
	for _, b := range p.open {
		if oldest.IsZero() || b.since.Before(oldest) {
			oldest = b.since
		}
	}
	return oldest, !oldest.IsZero()
}

// sendDue sends every open batch that has lingered long enough, oldest
// first.
func (p *Publisher) sendDue(now time.Time) {
	for _, b := range p.openInOrder() {
		if now.Sub(b.since) >= p.opts.Linger {
			p.sendBatch(b)
		}
	}
}

// sendOpen sends every open batch, oldest first.
func (p *Publisher) sendOpen() {
	for _, b := range p.openInOrder() {
		p.sendBatch(b)
	}
}

// openInOrder returns the open batches in the order they were opened, so
// that pairs of different subjects reach the stream in the order they were
// published as far as batching allows.
func (p *Publisher) openInOrder() []*openBatch {
	bs := p.ordered[:0]
	for _, b := range p.open {
		bs = append(bs, b)
	}
	slices.SortFunc(bs, func(a, b *openBatch) int { return cmp.Compare(a.order, b.order) })
	p.ordered = bs
	return bs
}

// add fills in pair's missing ID and Time and encodes it into its
// subject's open batch, sending the batch when it is full.
func (p *Publisher) add(pair *envelope.Pair) {
	if pair.ID == "" {
		pair.ID = envelope.NewID()
	} else if p.recent.seen(pair.ID, time.Now()) {
		// Sent already: a batch cannot carry the pair's id as its
		// Nats-Msg-Id, so the hook recognises the repeat itself.
		p.duplicates.Add(1)
		p.published.Add(1)
		return
	}
	if pair.Time.IsZero() {
		pair.Time = time.Now().UTC()
	}
	subject := pair.Subject()
	b := p.open[subject]
	if b == nil {
		b = p.openBatch(subject)
	}
	err := b.w.Add(pair) // fills Version and validates
	if errors.Is(err, envelope.ErrBatchFull) {
		p.sendBatch(b)
		b = p.openBatch(subject)
		err = b.w.Add(pair)
	}
	if err != nil {
		p.failed.Add(1)
		p.report(invalidPair(err))
		if b.w.Len() == 0 {
			p.closeBatch(b)
		}
		return
	}
	if b.w.Len() >= p.opts.BatchPairs {
		p.sendBatch(b)
	}
}

func (p *Publisher) openBatch(subject string) *openBatch {
	var w *envelope.BatchWriter
	if n := len(p.spare); n > 0 {
		w, p.spare = p.spare[n-1], p.spare[:n-1]
	} else {
		w = envelope.NewBatchWriter(p.opts.BatchPairs, p.opts.BatchBytes)
	}
	var buf []byte
	p.mu.Lock()
	if n := len(p.buffers); n > 0 {
		buf, p.buffers = p.buffers[n-1], p.buffers[:n-1]
	}
	p.mu.Unlock()
	w.Reset(buf)
	p.opened++
	b := &openBatch{subject: subject, w: w, since: time.Now(), order: p.opened}
	p.open[subject] = b
	return b
}

// closeBatch forgets b and keeps its writer for another batch.
func (p *Publisher) closeBatch(b *openBatch) {
	delete(p.open, b.subject)
	p.spare = append(p.spare, b.w)
}

// sendBatch publishes b's pairs as one message with a reply subject on
// which JetStream acknowledges it.
func (p *Publisher) sendBatch(b *openBatch) {
	n := b.w.Len()
	data, id := b.w.Finish()
	buf := b.w.Detach()
	p.closeBatch(b)
	for i := range n { // at most MaxPending pairs await an ack
		select {
		case p.slots <- struct{}{}:
		case <-p.quit:
			for range i {
				<-p.slots
			}
			p.failed.Add(uint64(n))
			p.abandoned += uint64(n)
			return
		}
	}
	p.mu.Lock()
	p.seq++
	token := strconv.FormatUint(p.seq, 36)
	msg := &nats.Msg{
		Subject: b.subject,
		Reply:   p.inbox + token,
		Header:  nats.Header{jetstream.MsgIDHeader: []string{id}},
		Data:    data,
	}
	p.inflight[token] = &flight{
		seq:     p.seq,
		pairs:   n,
		buf:     buf,
		subject: b.subject,
		timer:   time.AfterFunc(p.opts.AckTimeout, func() { p.complete(token, p.timeoutCause(token)) }),
		msg:     msg,
	}
	p.mu.Unlock()

	if err := p.nc.PublishMsg(msg); err != nil {
		p.complete(token, err)
	}
}

// onAck handles JetStream's reply to a publish.
func (p *Publisher) onAck(m *nats.Msg) {
	token, ok := strings.CutPrefix(m.Subject, p.inbox)
	if !ok {
		return
	}
	err := ackError(m)
	if errors.Is(err, jetstream.ErrNoStreamResponse) && p.retry(token) {
		return
	}
	p.complete(token, err)
}

// retry sends the pair with token again after a short backoff, unless it
// has been retried for long enough; it reports whether it will. The pair's
// AckTimeout timer keeps running: a pair still refused when it fires fails.
func (p *Publisher) retry(token string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, ok := p.inflight[token]
	if !ok || f.retries >= maxRetries {
		return false
	}
	f.retries++
	backoff := min(retryBase<<(f.retries-1), time.Second)
	msg := f.msg
	time.AfterFunc(backoff, func() {
		// Publish under the lock: once the message completes its buffer is
		// reused, so it must not be read after that.
		p.mu.Lock()
		_, still := p.inflight[token]
		var err error
		if still {
			err = p.nc.PublishMsg(msg)
		}
		p.mu.Unlock()
		if err != nil {
			p.complete(token, err)
		}
	})
	return true
}

// timeoutCause is why a pair not acknowledged in time failed: still no
// stream to take it, when that is what it was retried for.
func (p *Publisher) timeoutCause(token string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f, ok := p.inflight[token]; ok && f.retries > 0 {
		return jetstream.ErrNoStreamResponse
	}
	return jetstream.ErrAsyncPublishTimeout
}

// Retries of a pair refused for want of a stream leader: 50ms doubling to
// 1s, at most 20 times (and never past AckTimeout).
const (
	retryBase  = 50 * time.Millisecond
	maxRetries = 20
)

// ackError returns nil if m acknowledges a stored pair (or a duplicate of
// one), and otherwise why the pair was not stored.
func ackError(m *nats.Msg) error {
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		return jetstream.ErrNoStreamResponse // no stream listens on the subject
	}
	var ack struct {
		Error  *jetstream.APIError `json:"error"`
		Stream string              `json:"stream"`
	}
	switch {
	case json.Unmarshal(m.Data, &ack) != nil:
		return jetstream.ErrInvalidJSAck
	case ack.Error != nil:
		return ack.Error
	case ack.Stream == "":
		return jetstream.ErrInvalidJSAck
	}
	return nil
}

// complete counts the outcome of the pair published with token. It is
// called from the ack subscription, a timer or the goroutine, and counts a
// pair once however many times it is called.
func (p *Publisher) complete(token string, err error) {
	p.mu.Lock()
	f, ok := p.inflight[token]
	if !ok {
		p.mu.Unlock()
		return
	}
	delete(p.inflight, token)
	f.timer.Stop()
	for range f.pairs {
		<-p.slots
	}
	if err == nil {
		p.published.Add(uint64(f.pairs))
	} else {
		p.failed.Add(uint64(f.pairs))
	}
	p.waiters = release(p.waiters, f.seq)
	if len(p.buffers) < maxSpareBuffers {
		// Nothing reads the message any more: nats.go copied it when it
		// was published, and a retry is no longer possible.
		p.buffers = append(p.buffers, f.buf[:0])
	}
	p.mu.Unlock()

	if err != nil && p.opts.OnError != nil {
		select {
		case p.errs <- fmt.Errorf("publish: %s: %w", f.subject, err):
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
	p.sendOpen()
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
	n := p.abandoned + p.abandonQueued()
	for _, b := range p.open {
		n += uint64(b.w.Len())
		p.failed.Add(uint64(b.w.Len()))
		p.closeBatch(b)
	}
	_ = p.sub.Unsubscribe() // fails only if the connection is closed, and then the subscription is gone anyway

	p.mu.Lock()
	for _, f := range p.inflight {
		f.timer.Stop()
		n += uint64(f.pairs)
		p.failed.Add(uint64(f.pairs))
	}
	clear(p.inflight)
	for _, w := range p.waiters {
		close(w.done)
	}
	p.waiters = nil
	p.mu.Unlock()

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

// RecentIDWindow is how long a publisher remembers the caller-given pair
// IDs it has sent, at least (and at most twice as long): a pair published
// again with the same ID within it is counted as Published and Duplicates
// and not sent, as JetStream's duplicate window (30s by default) would drop
// a repeated single-pair message. At most maxRecentIDs IDs are remembered
// per half-window; beyond that rate the window shortens. IDs the publisher
// generates are never repeated and are not remembered.
const RecentIDWindow = 30 * time.Second

const maxRecentIDs = 32 << 10

// recentIDs remembers hashes of recent IDs in two generations: an ID is
// found while its generation or the next is current.
type recentIDs struct {
	seed      maphash.Seed
	cur, prev map[uint64]struct{}
	since     time.Time
}

// seen reports whether id was added within the window, and adds it.
func (r *recentIDs) seen(id string, now time.Time) bool {
	if r.cur == nil {
		r.seed, r.cur, r.prev, r.since = maphash.MakeSeed(), map[uint64]struct{}{}, map[uint64]struct{}{}, now
	}
	h := maphash.String(r.seed, id)
	if _, ok := r.cur[h]; ok {
		return true
	}
	if _, ok := r.prev[h]; ok {
		return true
	}
	if now.Sub(r.since) >= RecentIDWindow || len(r.cur) >= maxRecentIDs {
		clear(r.prev)
		r.prev, r.cur, r.since = r.cur, r.prev, now
	}
	r.cur[h] = struct{}{}
	return false
}
