package verifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/pkg/diff"
	"github.com/parityhq/parity/pkg/envelope"
	"github.com/parityhq/parity/pkg/natsnames"
	"github.com/parityhq/parity/pkg/redact"
	"github.com/parityhq/parity/pkg/report"
	"github.com/parityhq/parity/pkg/segment"
)

// Store is what a worker reads rules from and writes to. *store.Store
// satisfies it.
type Store interface {
	RulesStore
	// Apply writes a batch in one transaction.
	Apply(ctx context.Context, b *store.Batch) error
	// Applied reports which of seqs an earlier Apply recorded.
	Applied(ctx context.Context, stream string, seqs []uint64) (map[uint64]bool, error)
	// PruneApplied forgets recorded sequences older than olderThan.
	PruneApplied(ctx context.Context, olderThan time.Time) (int64, error)
	// AdoptSegmentConfigs stores def as the segment definition of every
	// counted experiment that has none.
	AdoptSegmentConfigs(ctx context.Context, def segment.Definition, author, reason string) (int64, error)
}

// Options configure a [Worker]. The zero value is valid; every default is
// documented on its field.
type Options struct {
	Stream StreamOptions
	// Durable is the consumer all workers share. Defaults to
	// natsnames.VerifierDurable ("parity-verifiers").
	Durable string
	// SegmentAttrs and SegmentCap are the segment definition stored for an
	// experiment that has none when this worker first sees it (see
	// [store.Store.EnsureSegmentConfig]): the attributes a segment is made
	// of, in order, and how many segments it admits. An experiment's stored
	// definition, not these, splits its pairs, so workers started with
	// different values still agree. SegmentAttrs defaults to ["country",
	// "plan"] (the user's key is never one); SegmentCap to
	// segment.DefaultCap.
	SegmentAttrs []string
	SegmentCap   int
	// FlushInterval is the longest a judged pair waits before it is written.
	// Defaults to 500ms; at most 1s.
	FlushInterval time.Duration
	// MaxBatch flushes early when this many messages are waiting. Defaults
	// to 4000; it must not exceed MaxAckPending.
	MaxBatch int
	// MaxAckPending caps the unacknowledged messages of all workers together.
	// Defaults to 20000.
	MaxAckPending int
	// PullBytes caps the bytes a worker has asked the server for and not
	// yet taken: its pull requests never ask for more, however many
	// messages that is. A NATS server closes a connection whose undelivered
	// data exceeds its max_pending (64 MiB by default) as a slow consumer,
	// and the messages in flight on it then wait AckWait to be redelivered,
	// so keep it well below that. It must be at least twice the stream's
	// largest message (2 MiB), so that a pull for the remaining half always
	// fits one. Defaults to DefaultPullBytes (16 MiB).
	PullBytes int
	// AckWait is how long the server waits for an ack before redelivering.
	// Defaults to 30s; workers extend it while a flush is retried.
	AckWait time.Duration
	// SamplesPerFlush caps the divergence samples kept per (experiment,
	// operation, segment) in one flush. Defaults to 5.
	SamplesPerFlush int
	// RulesReload is how often a worker reloads every experiment's rules, in
	// case it missed a change notice. Defaults to 30s.
	RulesReload time.Duration
	// LatencyInterval is how often a worker writes the latency histograms it
	// gathered (counts are written every flush). Each write rewrites a
	// histogram row per segment and hour, so writing them less often than
	// counts keeps PostgreSQL's write volume per pair low. A worker killed
	// without a chance to flush loses at most this much of its latency
	// observations; counts are unaffected. Defaults to 10s.
	LatencyInterval time.Duration
	// MaxClockSkew is how far ahead of the verifier's clock a pair's time
	// may be: hosts' clocks disagree a little, never by hours. A pair dated
	// further ahead is dead-lettered with that reason, so it cannot pin an
	// experiment's last-seen time in the future. Defaults to 5m.
	MaxClockSkew time.Duration
	// MaxPairAge is how far behind the verifier's clock a pair's time may
	// be. A pair can wait in the stream for Stream.MaxAge (say while every
	// verifier is down), so this defaults to Stream.MaxAge plus an hour; an
	// older pair is dead-lettered with that reason.
	MaxPairAge time.Duration
	// Logger receives operational messages; never pair values. Defaults to
	// slog.Default().
	Logger *slog.Logger
}

// DefaultOptions returns the options a zero [Options] stands for: every
// default in one place, for the commands' flags to show.
func DefaultOptions() Options {
	return Options{
		Stream:          DefaultStreamOptions(),
		Durable:         natsnames.VerifierDurable,
		SegmentAttrs:    []string{"country", "plan"},
		SegmentCap:      segment.DefaultCap,
		FlushInterval:   500 * time.Millisecond,
		MaxBatch:        4000,
		MaxAckPending:   20000,
		PullBytes:       DefaultPullBytes,
		AckWait:         30 * time.Second,
		SamplesPerFlush: 5,
		RulesReload:     30 * time.Second,
		LatencyInterval: 10 * time.Second,
		MaxClockSkew:    DefaultMaxClockSkew,
		// MaxPairAge follows Stream.MaxAge; see setDefaults.
	}
}

func (o *Options) setDefaults() error {
	if err := o.Stream.setDefaults(); err != nil {
		return err
	}
	d := DefaultOptions()
	if o.Durable == "" {
		o.Durable = d.Durable
	}
	if o.SegmentAttrs == nil {
		o.SegmentAttrs = d.SegmentAttrs
	}
	if o.SegmentCap == 0 {
		o.SegmentCap = d.SegmentCap
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = d.FlushInterval
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = d.MaxBatch
	}
	if o.MaxAckPending == 0 {
		o.MaxAckPending = d.MaxAckPending
	}
	if o.PullBytes == 0 {
		o.PullBytes = d.PullBytes
	}
	if o.AckWait == 0 {
		o.AckWait = d.AckWait
	}
	if o.SamplesPerFlush == 0 {
		o.SamplesPerFlush = d.SamplesPerFlush
	}
	if o.RulesReload == 0 {
		o.RulesReload = d.RulesReload
	}
	if o.LatencyInterval == 0 {
		o.LatencyInterval = d.LatencyInterval
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxClockSkew == 0 {
		o.MaxClockSkew = d.MaxClockSkew
	}
	if o.MaxPairAge == 0 {
		o.MaxPairAge = o.Stream.MaxAge + time.Hour
	}
	switch {
	case o.MaxClockSkew < 0:
		return fmt.Errorf("%w: MaxClockSkew: must not be negative", ErrInvalidOption)
	case o.MaxPairAge < 0:
		return fmt.Errorf("%w: MaxPairAge: must not be negative", ErrInvalidOption)
	case o.FlushInterval < 0 || o.FlushInterval > time.Second:
		return fmt.Errorf("%w: FlushInterval: must be between 0 and 1s, got %v", ErrInvalidOption, o.FlushInterval)
	case o.MaxBatch < 0:
		return fmt.Errorf("%w: MaxBatch: must not be negative", ErrInvalidOption)
	case o.MaxAckPending < o.MaxBatch:
		return fmt.Errorf("%w: MaxAckPending (%d) must be at least MaxBatch (%d)", ErrInvalidOption, o.MaxAckPending, o.MaxBatch)
	case o.PullBytes < 2*maxMsgSize:
		return fmt.Errorf("%w: PullBytes: must be at least %d (twice the largest message), got %d", ErrInvalidOption, 2*maxMsgSize, o.PullBytes)
	case o.AckWait < time.Second:
		return fmt.Errorf("%w: AckWait: must be at least 1s, got %v", ErrInvalidOption, o.AckWait)
	case o.LatencyInterval < 0:
		return fmt.Errorf("%w: LatencyInterval: must not be negative", ErrInvalidOption)
	case o.RulesReload < time.Second:
		return fmt.Errorf("%w: RulesReload: must be at least 1s, got %v", ErrInvalidOption, o.RulesReload)
	case o.SamplesPerFlush < 0:
		return fmt.Errorf("%w: SamplesPerFlush: must not be negative", ErrInvalidOption)
	}
	if err := (segment.Definition{Attrs: o.SegmentAttrs, Cap: o.SegmentCap}).Validate(); err != nil {
		return fmt.Errorf("%w: SegmentAttrs, SegmentCap: %w", ErrInvalidOption, err)
	}
	return nil
}

// DefaultPullBytes is the default of [Options.PullBytes]. A worker asks for
// more when half of it has arrived, so it keeps 8 MiB in hand: ~60 ms of
// work at the ~130 MB/s one worker judges 8 KB pairs at in B1, against a
// pull's round trip of well under a millisecond. 16 MiB is a quarter of a
// server's default max_pending (past which it closes the connection).
// docs/scaling.md has the model.
const DefaultPullBytes = 16 << 20

// DefaultMaxClockSkew is the default of [Options.MaxClockSkew].
const DefaultMaxClockSkew = 5 * time.Minute

// TimeWindow is the range of pair times a verifier accepts around its own
// clock: at most Ahead in the future and Behind in the past.
type TimeWindow struct{ Ahead, Behind time.Duration }

// TimeWindow returns the window o accepts, with o's defaults applied.
func (o Options) TimeWindow() (TimeWindow, error) {
	if err := o.setDefaults(); err != nil {
		return TimeWindow{}, err
	}
	return TimeWindow{Ahead: o.MaxClockSkew, Behind: o.MaxPairAge}, nil
}

// Check returns a [*envelope.FieldError] for the field "time" when t is
// outside the window around now, saying which bound it broke and the flag
// that sets it, or nil when t is inside.
func (tw TimeWindow) Check(t, now time.Time) error {
	switch {
	case t.After(now.Add(tw.Ahead)):
		return &envelope.FieldError{Field: "time", Problem: fmt.Sprintf("%s is more than %v ahead of the verifier's clock (--max-clock-skew)",
			t.UTC().Format(time.RFC3339), tw.Ahead)}
	case t.Before(now.Add(-tw.Behind)):
		return &envelope.FieldError{Field: "time", Problem: fmt.Sprintf("%s is more than %v before the verifier's clock (--max-pair-age)",
			t.UTC().Format(time.RFC3339), tw.Behind)}
	}
	return nil
}

// Stats are a worker's counters since it started.
type Stats struct {
	Consumed     uint64 // messages received
	Judged       uint64 // pairs counted
	Divergent    uint64 // of Judged, divergent
	DeadLettered uint64 // envelopes set aside with a reason
	Duplicates   uint64 // redeliveries already counted by an earlier batch
	Flushes      uint64 // committed batches
	FlushErrors  uint64 // failed attempts to commit a batch
	// FlushTime is the total time spent committing batches, retries
	// included.
	FlushTime time.Duration
}

// Worker consumes pairs and writes their counts. Create it with [New] and
// start it with [Worker.Run].
type Worker struct {
	js    jetstream.JetStream
	store Store
	opts  Options
	log   *slog.Logger
	rules *judges
	// window is the range of pair times accepted around the clock.
	window TimeWindow
	// Latencies gathered since they were last written, and when that was;
	// used by the flushing goroutine only.
	lat        map[latencyKey]*latencies
	latWritten time.Time

	consumed, judged, divergent, deadLettered, duplicates, flushes, flushErrors atomic.Uint64
	flushNanos                                                                  atomic.Int64
}

// New returns a worker reading from js and writing to st.
func New(js jetstream.JetStream, st Store, opts Options) (*Worker, error) {
	if js == nil || st == nil {
		return nil, fmt.Errorf("%w: a JetStream context and a store are required", ErrInvalidOption)
	}
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	log := opts.Logger.With("component", "verifier")
	return &Worker{js: js, store: st, opts: opts, log: log, rules: newJudges(log),
		window: TimeWindow{Ahead: opts.MaxClockSkew, Behind: opts.MaxPairAge},
		lat:    make(map[latencyKey]*latencies), latWritten: time.Now()}, nil
}

// Stats returns the worker's counters.
func (w *Worker) Stats() Stats {
	return Stats{
		Consumed:     w.consumed.Load(),
		Judged:       w.judged.Load(),
		Divergent:    w.divergent.Load(),
		DeadLettered: w.deadLettered.Load(),
		Duplicates:   w.duplicates.Load(),
		Flushes:      w.flushes.Load(),
		FlushErrors:  w.flushErrors.Load(),
		FlushTime:    time.Duration(w.flushNanos.Load()),
	}
}

// Run ensures the stream and the durable consumer exist, then consumes until
// ctx ends. On the way out it stops pulling, judges what it already received,
// and flushes it (waiting up to 10s for the store) before returning.
func (w *Worker) Run(ctx context.Context) error {
	st, err := EnsureStream(ctx, w.js, w.opts.Stream)
	if err != nil {
		return err
	}
	epoch := fmt.Sprintf("%s@%d", w.opts.Stream.Name, st.CachedInfo().Created.UnixNano())
	// Experiments counted before segment definitions were stored keep the
	// definition in force: this worker's flags.
	def := segment.Definition{Attrs: w.opts.SegmentAttrs, Cap: w.opts.SegmentCap}
	n, err := w.store.AdoptSegmentConfigs(ctx, def, "verifier", fmt.Sprintf(
		"adopted on upgrade from the flags in force: --segment-attrs=%s --segment-cap=%d", strings.Join(def.Attrs, ","), def.Cap))
	if err != nil {
		return fmt.Errorf("verifier: adopt segment definitions: %w", err)
	}
	if n > 0 {
		w.log.Info("verifier: stored the segment definition in force for experiments that had none", "experiments", n,
			"attrs", def.Attrs, "cap", def.Cap)
	}
	if err := w.rules.loadAll(ctx, w.store); err != nil {
		return fmt.Errorf("verifier: load rules: %w", err)
	}
	stopRules, err := w.watchRules(ctx)
	if err != nil {
		return err
	}
	defer stopRules()
	cons, err := ensureConsumer(ctx, w.js, w.opts.Stream.Name, w.opts.Durable, &w.opts)
	if err != nil {
		return err
	}
	// Pull requests expire after 5s (not the library's 30s), so a request the
	// server lost (a consumer leader failing over in a cluster) is replaced
	// within seconds rather than leaving the worker idle for half a minute.
	// Pulls are bounded in bytes, not messages: a message holds one pair or
	// a batch of up to 256 KiB, and a pull of 4,000 batches asked the server
	// for a gigabyte at once. Past its max_pending it closed the connection
	// as a slow consumer and what was in flight waited AckWait (30s) for
	// redelivery: B1 at 8 KB stalled for half a minute in some runs.
	it, err := cons.Messages(jetstream.PullMaxBytes(w.opts.PullBytes), jetstream.PullExpiry(5*time.Second))
	if err != nil {
		return fmt.Errorf("verifier: consume: %w", err)
	}
	msgs := make(chan jetstream.Msg, 256)
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		defer close(msgs)
		for {
			m, err := it.Next()
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			if err != nil {
				continue // a missed heartbeat or a transient error; the iterator recovers
			}
			select {
			case msgs <- m:
			case <-stopped:
				return // unacknowledged: the server redelivers it
			}
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			it.Drain()
		case <-stopped:
			it.Stop()
		}
	}()

	// One goroutine commits a batch while this one fills the next: the
	// database round trips never stall consumption. At most two batches wait
	// (one committing, one queued), well within MaxAckPending.
	full := make(chan *batch, 1)
	flushErr := make(chan error, 1)
	flusherDone := make(chan struct{})
	go func() {
		defer close(flusherDone)
		// Latencies gathered by earlier flushes are written within
		// LatencyInterval even when no further pairs arrive.
		lat := time.NewTicker(max(w.opts.LatencyInterval, 10*time.Millisecond))
		defer lat.Stop()
		for {
			var err error
			select {
			case b, ok := <-full:
				if !ok {
					return
				}
				err = w.flush(ctx, b, false)
			case <-lat.C:
				err = w.flushLatencies(ctx, false)
			}
			if err != nil {
				flushErr <- err
				return
			}
		}
	}()
	handOff := func(b *batch) error {
		select {
		case full <- b:
			return nil
		case err := <-flushErr:
			return err
		}
	}

	b := newBatch(epoch)
	tick := time.NewTicker(w.opts.FlushInterval)
	defer tick.Stop()
	err = nil
loop:
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				break loop
			}
			w.add(b, m)
			if len(b.msgs) >= w.opts.MaxBatch {
				if err = handOff(b); err != nil {
					break loop
				}
				b = newBatch(epoch)
			}
		case <-tick.C:
			if len(b.msgs) > 0 {
				if err = handOff(b); err != nil {
					break loop
				}
				b = newBatch(epoch)
			}
		case err = <-flushErr:
			break loop
		}
	}
	close(full)
	<-flusherDone
	if err != nil {
		return err // unacknowledged messages are redelivered
	}
	select {
	case err := <-flushErr:
		return err
	default:
	}
	// Shutting down: what was received is judged; give the store up to 10s.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := w.flush(fctx, b, true); err != nil {
		return err
	}
	return w.flushLatencies(fctx, true)
}

type pending struct {
	msg       jetstream.Msg
	seq       uint64
	term      string // non-empty: terminate with this reason after commit
	duplicate bool
}

type countKey struct {
	experiment, operation, segment string
	minute                         int64
}

type sampleKey struct{ experiment, operation, segment string }

type latencyKey struct {
	experiment, operation, segment string
	hour                           int64
}

type latencies struct{ control, candidate report.Histogram }

type variantKey struct {
	experiment, operation, variant, reason string
	minute                                 int64
}

type signatureKey struct {
	experiment, operation, segment string
	minute                         int64
	signature                      string
}

type batch struct {
	epoch       string
	msgs        []pending
	seqs        map[uint64]bool // stream sequences in msgs
	redelivered []int           // indexes into msgs, judged at flush time
	unsegmented []int           // indexes into msgs of experiments without a known segment definition, judged at flush time
	counts      map[countKey]*store.Count
	samples     []store.Sample
	perKey      map[sampleKey]int
	signatures  map[signatureKey]*store.SignatureCount
	latencies   map[latencyKey]*latencies
	variants    map[variantKey]*store.VariantCount
	deadLetters []store.DeadLetter
}

func newBatch(epoch string) *batch {
	return &batch{epoch: epoch, seqs: make(map[uint64]bool), counts: make(map[countKey]*store.Count),
		perKey: make(map[sampleKey]int), signatures: make(map[signatureKey]*store.SignatureCount),
		latencies: make(map[latencyKey]*latencies), variants: make(map[variantKey]*store.VariantCount)}
}

// add takes one message into the batch. A first delivery is judged at once; a
// redelivery waits for the flush, where it is checked against what the store
// already counted.
func (w *Worker) add(b *batch, m jetstream.Msg) {
	w.consumed.Add(1)
	p := pending{msg: m}
	md, err := m.Metadata()
	if err != nil {
		// Not a JetStream message: nothing to count, nothing to ack.
		return
	}
	p.seq = md.Sequence.Stream
	if b.seqs[p.seq] {
		// A redelivery of a message this batch already holds: the copy in
		// the batch is counted and acked; this one is acked with it.
		p.duplicate = true
		w.duplicates.Add(1)
		b.msgs = append(b.msgs, p)
		return
	}
	b.seqs[p.seq] = true
	b.msgs = append(b.msgs, p)
	if md.NumDelivered > 1 {
		b.redelivered = append(b.redelivered, len(b.msgs)-1)
		return
	}
	w.judge(b, len(b.msgs)-1)
}

// judge decodes message i of the batch, a single pair or a batch of them,
// and judges each pair, adding it to the counts or to the dead letters. A
// message that cannot be read at all is dead-lettered and terminated; a bad
// pair inside a readable batch is dead-lettered alone and the rest are
// counted, so the message is acknowledged. Every pair of a message is
// counted in the same batch, and so in the same transaction as the
// message's stream sequence: a redelivered message is counted whole or not
// at all. judge never panics.
func (w *Worker) judge(b *batch, i int) {
	pm := &b.msgs[i]
	defer func() {
		if r := recover(); r != nil {
			w.deadLetter(b, pm, fmt.Sprintf("verifier: internal error judging pair: %v", r))
		}
	}()
	m, err := envelope.DecodeMessage(pm.msg.Data())
	if err != nil {
		w.deadLetter(b, pm, err.Error())
		return
	}
	// A single pair's own problems come first: a message is refused for
	// its header only when its envelope would otherwise be counted. (A
	// batch's pairs are judged one by one after the header, which belongs
	// to the batch.)
	if m.Version == envelope.Version {
		if subj := m.Items[0].Pair.Subject(); subj != pm.msg.Subject() {
			w.deadLetter(b, pm, fmt.Sprintf("verifier: envelope for %s published on subject %s", subj, pm.msg.Subject()))
			return
		}
	}
	if reason := identityProblem(pm.msg.Headers().Get(jetstream.MsgIDHeader), m.ID); reason != "" {
		w.deadLetter(b, pm, reason)
		return
	}
	def, ok := w.rules.segmentsFor(experimentOf(pm.msg.Subject()))
	if !ok && experimentOf(pm.msg.Subject()) != "" {
		// The experiment's segment definition is not known here yet: judge
		// the message at flush time, once the store has told it. (Every pair
		// of a message has the message's subject, so one experiment.)
		b.unsegmented = append(b.unsegmented, i)
		return
	}
	now := time.Now()
	var seen map[string]bool // ids of this batch's pairs so far
	if len(m.Items) > 1 {
		seen = make(map[string]bool, len(m.Items))
	}
	for k, it := range m.Items {
		where := ""
		if m.Version != envelope.Version {
			where = fmt.Sprintf("pair %d of %d in batch %s: ", k+1, len(m.Items), m.ID)
		}
		if it.Err != nil {
			w.deadLetterPair(b, pm, it.Raw, where+it.Err.Error())
			continue
		}
		p := it.Pair
		if subj := p.Subject(); subj != pm.msg.Subject() {
			w.deadLetterPair(b, pm, it.Raw, fmt.Sprintf("verifier: %senvelope for %s published on subject %s", where, subj, pm.msg.Subject()))
			continue
		}
		if err := w.window.Check(p.Time, now); err != nil {
			w.deadLetterPair(b, pm, it.Raw, where+err.Error())
			continue
		}
		if seen != nil {
			if seen[p.ID] {
				w.duplicates.Add(1) // the same pair twice in one message counts once
				continue
			}
			seen[p.ID] = true
		}
		// One differ for both the verdict and a sample's detail, so a rules
		// reload in between cannot give them different versions.
		d := w.rules.forExperiment(p.Experiment)
		res := d.Judge(p)
		w.count(b, p, def, d, &res)
	}
}

// identityProblem returns why a message's Nats-Msg-Id header does not
// identify it, or "" when it does. The header must be the envelope's own id
// (the pair's, or the batch's): JetStream stores one message per header
// value within its duplicate window, so a missing header would let a
// republished pair be counted again, and a header borrowed from another
// envelope would let JetStream drop a different pair as a duplicate.
func identityProblem(header, id string) string {
	switch {
	case header == "":
		return fmt.Sprintf("verifier: no %s header: publish the envelope with its id %q as %s, so a republished envelope is stored once",
			jetstream.MsgIDHeader, id, jetstream.MsgIDHeader)
	case header != id:
		return fmt.Sprintf("verifier: %s header %q is not the envelope's id %q", jetstream.MsgIDHeader, truncate(header, 40), id)
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// deadLetter sets the whole message aside with reason and terminates it.
func (w *Worker) deadLetter(b *batch, pm *pending, reason string) {
	reason = w.deadLetterPair(b, pm, pm.msg.Data(), reason)
	pm.term = reason
}

// deadLetterPair stores data, one pair of the message or all of it, as a
// dead letter with reason, and returns the reason as stored.
func (w *Worker) deadLetterPair(b *batch, pm *pending, data []byte, reason string) string {
	size := len(data)
	if len(data) > store.MaxDeadLetterBytes {
		data = data[:store.MaxDeadLetterBytes]
	}
	// An envelope that could not be read cannot be redacted: for an
	// experiment with redaction, keep the reason and size, not the bytes.
	parts := strings.SplitN(pm.msg.Subject(), ".", 4)
	if len(parts) >= 3 && w.rules.redactorFor(parts[2]).Active() {
		data = nil
		reason += " (bytes withheld: the experiment redacts values)"
	}
	b.deadLetters = append(b.deadLetters, store.DeadLetter{
		Source: "nats", Subject: pm.msg.Subject(), Reason: reason,
		Data: append([]byte(nil), data...), Size: size, At: time.Now().UTC(),
	})
	return reason
}

func (w *Worker) count(b *batch, p *envelope.Pair, def segment.Definition, d *diff.Differ, res *diff.Result) {
	segment, attrs := def.Key(p.User.Attrs)
	minute := p.Time.UTC().Truncate(time.Minute)
	k := countKey{p.Experiment, p.Operation, segment, minute.Unix()}
	c := b.counts[k]
	if c == nil {
		c = &store.Count{Experiment: p.Experiment, Operation: p.Operation, Segment: segment, Attrs: attrs, Minute: minute}
		b.counts[k] = c
	}
	if !p.Time.Before(c.LastSeen) {
		c.LastSeen = p.Time.UTC()
		c.LastStage = string(p.Stage)
	}
	if c.FirstSeen.IsZero() || p.Time.Before(c.FirstSeen) {
		c.FirstSeen = p.Time.UTC()
	}
	divergent := res.Verdict.Divergent()
	co, ca := p.Control.Outcome(), p.Candidate.Outcome()
	c.Count(report.PairOutcome{AA: p.Mode == envelope.ModeAA, Divergent: divergent,
		ControlFailed: failed(co), CandidateFailed: failed(ca),
		Skipped: co == envelope.StatusSkipped || ca == envelope.StatusSkipped, CandidateTimeout: ca == envelope.StatusTimeout})
	if p.Mode == envelope.ModeAA {
		return // control against a second read of control: a mismatch is noise
	}
	w.observe(b, p, segment, minute, divergent)
	if !divergent {
		return
	}
	sig := signatureOf(res)
	sk := signatureKey{p.Experiment, p.Operation, segment, minute.Unix(), sig}
	sc := b.signatures[sk]
	if sc == nil {
		patterns, _ := json.Marshal(res.Patterns()) // []PatternKind of strings always marshals
		sc = &store.SignatureCount{Experiment: p.Experiment, Operation: p.Operation, Segment: segment, Minute: minute,
			Signature: sig, Patterns: patterns, FirstSeen: p.Time.UTC(), LastSeen: p.Time.UTC()}
		b.signatures[sk] = sc
	}
	sc.Count++
	sc.FirstSeen = minTime(sc.FirstSeen, p.Time.UTC())
	sc.LastSeen = maxTime(sc.LastSeen, p.Time.UTC())
	smk := sampleKey{p.Experiment, p.Operation, segment}
	if b.perKey[smk] < w.opts.SamplesPerFlush {
		b.perKey[smk]++
		// Judge leaves out the concrete differences (paths, values): render
		// them only for the few pairs kept as samples.
		detail := d.Explain(p)
		b.samples = append(b.samples, sampleOf(p, segment, sig, &detail, w.rules.redactorFor(p.Experiment)))
	}
}

// observe adds a counted pair's latencies to its segment's hourly
// histograms (a side that did not run has none) and counts it under its flag
// variant and targeting reason.
func (w *Worker) observe(b *batch, p *envelope.Pair, segment string, minute time.Time, divergent bool) {
	lk := latencyKey{p.Experiment, p.Operation, segment, minute.Truncate(time.Hour).Unix()}
	l := b.latencies[lk]
	if l == nil {
		l = &latencies{}
		b.latencies[lk] = l
	}
	if p.Control.Outcome() != envelope.StatusSkipped {
		l.control.Observe(p.Control.Duration())
	}
	if p.Candidate.Outcome() != envelope.StatusSkipped {
		l.candidate.Observe(p.Candidate.Duration())
	}
	var variant, reason string
	if p.Flag != nil {
		variant, reason = p.Flag.Variant, p.Flag.Reason
	}
	vk := variantKey{p.Experiment, p.Operation, variant, reason, minute.Unix()}
	v := b.variants[vk]
	if v == nil {
		v = &store.VariantCount{Experiment: p.Experiment, Operation: p.Operation, Variant: variant, Reason: reason, Minute: minute}
		b.variants[vk] = v
	}
	v.Pairs++
	if divergent {
		v.Divergent++
	}
}

// flushLatencies writes the latencies gathered since the last write, when
// they are due or force is set.
func (w *Worker) flushLatencies(ctx context.Context, force bool) error {
	if len(w.lat) == 0 || !force && time.Since(w.latWritten) < w.opts.LatencyInterval {
		return nil
	}
	sb := &store.Batch{Latencies: encodeLatencies(w.lat)}
	if err := w.retry(ctx, newBatch(""), func(ctx context.Context) error { return w.store.Apply(ctx, sb) }); err != nil {
		return err
	}
	w.lat, w.latWritten = make(map[latencyKey]*latencies), time.Now()
	return nil
}

func encodeLatencies(m map[latencyKey]*latencies) []store.Latency {
	out := make([]store.Latency, 0, len(m))
	for k, l := range m {
		out = append(out, store.Latency{Experiment: k.experiment, Operation: k.operation, Segment: k.segment,
			Hour: time.Unix(k.hour, 0).UTC(), Control: l.control.Encode(), Candidate: l.candidate.Encode()})
	}
	return out
}

// mergeLatencies returns a fresh map holding a's and b's histograms added
// together; neither is modified, so a failed flush can be retried.
func mergeLatencies(a, b map[latencyKey]*latencies) map[latencyKey]*latencies {
	out := make(map[latencyKey]*latencies, len(a)+len(b))
	for _, m := range []map[latencyKey]*latencies{a, b} {
		for k, l := range m {
			o := out[k]
			if o == nil {
				o = &latencies{}
				out[k] = o
			}
			o.control.Merge(l.control)
			o.candidate.Merge(l.candidate)
		}
	}
	return out
}

// signatureOf returns the signature a divergent pair is counted under: the
// diff's fingerprint for a mismatch, the verdict itself otherwise (for
// example "candidate_error"), so every divergence has a reason to group by.
func signatureOf(res *diff.Result) string {
	if res.Signature != "" {
		return res.Signature
	}
	return string(res.Verdict)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func failed(s envelope.Status) bool {
	return s == envelope.StatusError || s == envelope.StatusPanic || s == envelope.StatusTimeout
}

// sampleOf keeps a divergent pair for drill-down, with the experiment's
// redaction applied to both observations and to the differences' values.
func sampleOf(p *envelope.Pair, segment, signature string, res *diff.Result, red *redact.Redactor) store.Sample {
	paths := make([]string, 0, len(res.Diffs))
	for _, d := range res.Diffs {
		paths = append(paths, d.Path)
	}
	ctl, _ := json.Marshal(&p.Control) // an Observation always marshals: its Value was validated
	cand, _ := json.Marshal(&p.Candidate)
	diffs, _ := json.Marshal(res.Diffs)
	return store.Sample{
		PairID: p.ID, Experiment: p.Experiment, Operation: p.Operation, Segment: segment,
		Kind: string(p.Kind), Stage: string(p.Stage), UserKey: p.User.Key, Time: p.Time.UTC(),
		Control: red.Observation(ctl), Candidate: red.Observation(cand), Paths: paths,
		Verdict: string(res.Verdict), Signature: signature, RulesVersion: res.RulesVersion, Diffs: red.Differences(diffs),
	}
}

// flush judges the batch's redeliveries, writes the batch, and then
// acknowledges (or terminates) every message in it. While the store fails it
// retries with backoff, keeping the messages in progress so the server does
// not hand them to another worker.
func (w *Worker) flush(ctx context.Context, b *batch, final bool) error {
	if len(b.msgs) == 0 {
		return nil
	}
	start := time.Now()
	defer func() { w.flushNanos.Add(int64(time.Since(start))) }()
	if err := w.retry(ctx, b, func(ctx context.Context) error { return w.judgeRedelivered(ctx, b) }); err != nil {
		return err
	}
	if err := w.retry(ctx, b, func(ctx context.Context) error { return w.judgeUnsegmented(ctx, b) }); err != nil {
		return err
	}
	sb := &store.Batch{
		Stream:      b.epoch,
		Samples:     b.samples,
		DeadLetters: b.deadLetters,
		Counts:      make([]store.Count, 0, len(b.counts)),
		Seqs:        make([]uint64, 0, len(b.msgs)),
	}
	for _, c := range b.counts {
		sb.Counts = append(sb.Counts, *c)
	}
	for _, sc := range b.signatures {
		sb.Signatures = append(sb.Signatures, *sc)
	}
	// Latencies ride along every LatencyInterval (and on the way out), with
	// everything gathered since the last write.
	writeLat := final || time.Since(w.latWritten) >= w.opts.LatencyInterval
	if writeLat {
		sb.Latencies = encodeLatencies(mergeLatencies(w.lat, b.latencies))
	}
	for _, v := range b.variants {
		sb.Variants = append(sb.Variants, *v)
	}
	for _, pm := range b.msgs {
		if !pm.duplicate {
			sb.Seqs = append(sb.Seqs, pm.seq)
		}
	}
	// maybeCommitted: an attempt failed in a way that may have come after
	// its commit (say the reply was lost), so finding every sequence
	// recorded afterwards may be this batch's own doing.
	maybeCommitted := false
	err := w.retry(ctx, b, func(ctx context.Context) error {
		err := w.store.Apply(ctx, sb)
		if err != nil && !errors.Is(err, store.ErrAlreadyApplied) && !errors.Is(err, store.ErrAllApplied) {
			maybeCommitted = true
		}
		return err
	})
	if errors.Is(err, store.ErrAllApplied) {
		if !maybeCommitted {
			// Every message was counted by another worker first (it got
			// them redelivered while this one was slow): nothing of this
			// batch was written, so none of its pairs, dead letters or
			// latencies are this worker's to report. Ack them as the
			// duplicates they are.
			for _, pm := range b.msgs {
				if !pm.duplicate {
					w.duplicates.Add(1)
				}
			}
			ackAll(b)
			return nil
		}
		err = nil // the earlier attempt committed; only its reply was lost
	}
	if errors.Is(err, store.ErrAlreadyApplied) {
		// Another worker counted some of these messages between our check
		// and our commit: judge the batch again without them.
		if b, err = w.rebuild(ctx, b); err != nil {
			return err
		}
		return w.flush(ctx, b, final)
	}
	if err != nil {
		return err
	}
	w.flushes.Add(1)
	if writeLat {
		w.lat, w.latWritten = make(map[latencyKey]*latencies), time.Now()
	} else {
		w.lat = mergeLatencies(w.lat, b.latencies)
	}
	var judged, divergent uint64
	for _, c := range b.counts {
		judged += uint64(c.Pairs + c.AAPairs)
		divergent += uint64(c.Divergent)
	}
	w.judged.Add(judged)
	w.divergent.Add(divergent)
	w.deadLettered.Add(uint64(len(b.deadLetters)))
	ackAll(b)
	return nil
}

// ackAll acknowledges every message of a counted batch, or terminates it
// with its reason when it was dead-lettered.
func ackAll(b *batch) {
	for _, pm := range b.msgs {
		if pm.term != "" {
			_ = pm.msg.TermWithReason(pm.term)
		} else {
			_ = pm.msg.Ack()
		}
	}
}

// rebuild returns a new batch of b's messages in which every message the
// store has already recorded is a duplicate and the rest are judged afresh.
func (w *Worker) rebuild(ctx context.Context, b *batch) (*batch, error) {
	seqs := make([]uint64, 0, len(b.msgs))
	for _, pm := range b.msgs {
		seqs = append(seqs, pm.seq)
	}
	var done map[uint64]bool
	err := w.retry(ctx, b, func(ctx context.Context) error {
		var err error
		done, err = w.store.Applied(ctx, b.epoch, seqs)
		return err
	})
	if err != nil {
		return nil, err
	}
	nb := newBatch(b.epoch)
	for _, pm := range b.msgs {
		if pm.duplicate || done[pm.seq] || nb.seqs[pm.seq] {
			if !pm.duplicate {
				w.duplicates.Add(1)
			}
			nb.msgs = append(nb.msgs, pending{msg: pm.msg, seq: pm.seq, duplicate: true})
			continue
		}
		nb.seqs[pm.seq] = true
		nb.msgs = append(nb.msgs, pending{msg: pm.msg, seq: pm.seq})
		w.judge(nb, len(nb.msgs)-1)
	}
	return nb, nil
}

// judgeRedelivered asks the store which redelivered messages an earlier batch
// already counted, acks those as duplicates and judges the rest.
func (w *Worker) judgeRedelivered(ctx context.Context, b *batch) error {
	if len(b.redelivered) == 0 {
		return nil
	}
	seqs := make([]uint64, len(b.redelivered))
	for i, idx := range b.redelivered {
		seqs[i] = b.msgs[idx].seq
	}
	done, err := w.store.Applied(ctx, b.epoch, seqs)
	if err != nil {
		return err
	}
	for _, idx := range b.redelivered {
		if done[b.msgs[idx].seq] {
			b.msgs[idx].duplicate = true
			w.duplicates.Add(1)
			continue
		}
		w.judge(b, idx)
	}
	b.redelivered = nil
	return nil
}

// experimentOf returns the experiment a pair subject names
// (parity.pairs.<experiment>.<operation>), or "" when it names none.
func experimentOf(subject string) string {
	rest, ok := strings.CutPrefix(subject, natsnames.PairSubjectPrefix+".")
	if !ok {
		return ""
	}
	exp, _, _ := strings.Cut(rest, ".")
	return exp
}

// judgeUnsegmented learns the segment definition of every experiment whose
// pairs waited for one, storing this worker's default for an experiment that
// has none (the first worker to store one sets it for all), and judges the
// pairs that waited.
func (w *Worker) judgeUnsegmented(ctx context.Context, b *batch) error {
	if len(b.unsegmented) == 0 {
		return nil
	}
	def := segment.Definition{Attrs: w.opts.SegmentAttrs, Cap: w.opts.SegmentCap}
	reason := fmt.Sprintf("the first pair of the experiment reached a verifier with --segment-attrs=%s --segment-cap=%d",
		strings.Join(def.Attrs, ","), def.Cap)
	for _, idx := range b.unsegmented {
		exp := experimentOf(b.msgs[idx].msg.Subject())
		if _, ok := w.rules.segmentsFor(exp); ok || exp == "" {
			continue
		}
		c, err := w.store.EnsureSegmentConfig(ctx, exp, def, "verifier", reason)
		if err != nil {
			return err
		}
		w.rules.setSegments(c)
	}
	todo := b.unsegmented
	b.unsegmented = nil
	for _, idx := range todo {
		w.judge(b, idx)
	}
	if n := len(b.unsegmented); n > 0 { // cannot happen: every experiment above got its definition
		return fmt.Errorf("verifier: %d pairs still without a segment definition", n)
	}
	return nil
}

// retry calls f until it succeeds or ctx ends, backing off from 100ms to 5s.
// Meanwhile it keeps the batch's messages in progress, waking at least every
// AckWait/3 to do so, so the server does not hand them to another worker.
// Each attempt runs under its own 30s deadline and is not cut short when ctx
// ends, so a flush that has started during shutdown still commits.
func (w *Worker) retry(ctx context.Context, b *batch, f func(context.Context) error) error {
	backoff := 100 * time.Millisecond
	lastProgress := time.Now()
	for {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		err := f(actx)
		cancel()
		if err == nil || errors.Is(err, store.ErrAlreadyApplied) || errors.Is(err, store.ErrAllApplied) {
			return err
		}
		w.flushErrors.Add(1)
		w.log.Warn("verifier: flush failed; retrying", "err", err, "messages", len(b.msgs), "retry_in", backoff)
		deadline := time.Now().Add(backoff)
		for {
			if time.Since(lastProgress) >= w.opts.AckWait/3 {
				for _, pm := range b.msgs {
					_ = pm.msg.InProgress()
				}
				lastProgress = time.Now()
			}
			wait := min(time.Until(deadline), w.opts.AckWait/3)
			if wait <= 0 {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("verifier: flush abandoned, %d messages left unacknowledged for redelivery: %w", len(b.msgs), err)
			case <-time.After(wait):
			}
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}
