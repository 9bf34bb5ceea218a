// Package sweep runs reconciliation sweeps inside the collector: it claims
// a running sweep from the store, compares its two tables with
// pkg/reconcile, and commits every chunk (counts per segment, samples,
// signatures under the operation "reconcile:<table>", and the checkpoint)
// in one transaction, so the gate judges a sweep like any other operation.
//
// # Guarantees
//
// Every row is counted exactly once, through crashes: a chunk commits only
// from the checkpoint it started at, by the runner holding the sweep's
// lease, so a runner killed mid-chunk leaves nothing of that chunk, and the
// runner that takes the sweep over when the lease expires resumes after the
// last committed chunk. Pausing or cancelling a sweep (the store's status)
// stops its runner at its next chunk; resuming continues from the
// checkpoint. Databases are named sources configured on the collector
// (their URLs, with any password, never pass through the API or the store).
package sweep

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/pkg/diff"
	"github.com/parityhq/parity/pkg/reconcile"
	"github.com/parityhq/parity/pkg/reconcile/pgsource"
	"github.com/parityhq/parity/pkg/report"
)

// Spec is a sweep's configuration, stored with it as JSON.
type Spec struct {
	Old Side `json:"old"`
	New Side `json:"new"`
	// Key is the key column, named alike on both sides.
	Key string `json:"key"`
	// Segments are the columns whose values make a row's segment.
	Segments []string `json:"segments,omitempty"`
	// Rate is the most old-side rows read per second (0: no limit).
	Rate float64 `json:"rate,omitempty"`
	// RecheckDelay is how long after a row differs it is read again
	// (default 2s).
	RecheckDelay diff.Duration `json:"recheck_delay,omitempty"`
	// ChunkRows is the old side's rows per chunk (default 20,000).
	ChunkRows int `json:"chunk_rows,omitempty"`
}

// Side names a table or view in a configured source database.
type Side struct {
	Source string `json:"source"`
	Table  string `json:"table"`
}

// ErrInvalid reports a bad sweep specification; the message names the
// field.
var ErrInvalid = errors.New("sweep: invalid")

// Validate checks a spec against the configured sources.
func (s Spec) Validate(sources map[string]string) error {
	for _, side := range []struct {
		name string
		s    Side
	}{{"old", s.Old}, {"new", s.New}} {
		if _, ok := sources[side.s.Source]; !ok {
			names := slices.Sorted(mapKeys(sources))
			return fmt.Errorf("%w: %s.source %q is not a configured source (configured: %s)", ErrInvalid, side.name, side.s.Source, strings.Join(names, ", "))
		}
		if strings.TrimSpace(side.s.Table) == "" || len(side.s.Table) > 128 {
			return fmt.Errorf("%w: %s.table must name a table or view", ErrInvalid, side.name)
		}
	}
	switch {
	case strings.TrimSpace(s.Key) == "" || len(s.Key) > 63:
		return fmt.Errorf("%w: key must name the key column", ErrInvalid)
	case s.Rate < 0:
		return fmt.Errorf("%w: rate must not be negative", ErrInvalid)
	case s.ChunkRows < 0 || s.ChunkRows > 1_000_000:
		return fmt.Errorf("%w: chunk_rows must be in 0..1000000", ErrInvalid)
	case len(s.Segments) > 8:
		return fmt.Errorf("%w: at most 8 segment columns", ErrInvalid)
	}
	return nil
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Operation is where a table's sweep counts land.
func Operation(table string) string {
	if i := strings.LastIndexByte(table, '.'); i >= 0 {
		table = table[i+1:]
	}
	return "reconcile:" + strings.Trim(table, `"`)
}

// Counts are a sweep's counts so far, stored with it.
type Counts struct {
	reconcile.Counts
	// Segments are the counts per segment key.
	Segments map[string]reconcile.Counts `json:"segments,omitempty"`
}

// Store is what the runner needs of Parity's store.
type Store interface {
	ClaimSweep(ctx context.Context, owner string, lease time.Duration) (store.Sweep, bool, error)
	CommitSweepChunk(ctx context.Context, c store.SweepChunk) error
	SetSweepStatus(ctx context.Context, id int64, status, reason string, from ...string) (store.Sweep, error)
	RenewSweepLease(ctx context.Context, id int64, owner string, lease time.Duration) (bool, error)
}

// Options configure a [Runner].
type Options struct {
	// Sources are the databases sweeps may read, by name.
	Sources map[string]string
	// Rules returns the diff rules of an experiment.
	Rules func(ctx context.Context, experiment string) (*diff.Differ, error)
	// Interval is how often an idle runner looks for a sweep (default 1s);
	// Lease how long a sweep stays with a runner that stopped renewing it
	// (default 30s).
	Interval, Lease time.Duration
	Log             *slog.Logger
}

// Runner runs sweeps, one at a time.
type Runner struct {
	st    Store
	opts  Options
	owner string
}

// New returns a runner.
func New(st Store, opts Options) *Runner {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.Lease <= 0 {
		opts.Lease = 30 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Rules == nil {
		opts.Rules = func(context.Context, string) (*diff.Differ, error) { return diff.Exact(), nil }
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &Runner{st: st, opts: opts, owner: "runner-" + hex.EncodeToString(b[:])}
}

// Run claims and runs sweeps until ctx ends.
func (r *Runner) Run(ctx context.Context) {
	t := time.NewTicker(r.opts.Interval)
	defer t.Stop()
	for {
		for r.Step(ctx) {
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Step claims one sweep and runs it to its end (or until it is paused,
// cancelled or ctx ends); it reports whether it found one.
func (r *Runner) Step(ctx context.Context) bool {
	sw, ok, err := r.st.ClaimSweep(ctx, r.owner, r.opts.Lease)
	if err != nil {
		if ctx.Err() == nil {
			r.opts.Log.Error("sweep: claim", "err", err)
		}
		return false
	}
	if !ok {
		return false
	}
	err = r.run(ctx, sw)
	switch {
	case err == nil, errors.Is(err, store.ErrSweepMoved), ctx.Err() != nil:
	default:
		r.opts.Log.Warn("sweep: failed", "sweep", sw.ID, "experiment", sw.Experiment, "err", err)
		if _, serr := r.st.SetSweepStatus(context.WithoutCancel(ctx), sw.ID, store.SweepFailed, err.Error(), store.SweepRunning); serr != nil && !errors.Is(serr, store.ErrSweepMoved) {
			r.opts.Log.Error("sweep: record failure", "sweep", sw.ID, "err", serr)
		}
	}
	return true
}

func (r *Runner) run(ctx context.Context, sw store.Sweep) error {
	var spec Spec
	if err := json.Unmarshal(sw.Spec, &spec); err != nil {
		return fmt.Errorf("sweep: spec: %w", err)
	}
	if err := spec.Validate(r.opts.Sources); err != nil {
		return err
	}
	var counts Counts
	if len(sw.Counts) > 2 {
		if err := json.Unmarshal(sw.Counts, &counts); err != nil {
			return fmt.Errorf("sweep: counts: %w", err)
		}
	}
	if counts.Segments == nil {
		counts.Segments = map[string]reconcile.Counts{}
	}
	differ, err := r.opts.Rules(ctx, sw.Experiment)
	if err != nil {
		return fmt.Errorf("sweep: rules of %s: %w", sw.Experiment, err)
	}
	old, err := pgsource.Open(ctx, pgsource.Config{Side: "old", URL: r.opts.Sources[spec.Old.Source], Table: spec.Old.Table, Key: spec.Key, MaxConns: 2})
	if err != nil {
		return err
	}
	defer old.Close()
	nw, err := pgsource.Open(ctx, pgsource.Config{Side: "new", URL: r.opts.Sources[spec.New.Source], Table: spec.New.Table, Key: spec.Key, MaxConns: 2})
	if err != nil {
		return err
	}
	defer nw.Close()
	var estimate int64
	if n, err := old.EstimateRows(ctx); err == nil && n > 0 {
		estimate = n
	}
	// Keep the lease while a chunk takes long (its second looks, a slow
	// database); commits renew it too.
	hctx, stopHeartbeat := context.WithCancel(ctx)
	defer stopHeartbeat()
	go func() {
		t := time.NewTicker(r.opts.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-hctx.Done():
				return
			case <-t.C:
				if ok, err := r.st.RenewSweepLease(hctx, sw.ID, r.owner, r.opts.Lease); err == nil && !ok {
					return // paused, cancelled or taken over: the next commit stops the run
				}
			}
		}
	}()
	from := sw.Checkpoint
	opts := reconcile.Options{
		Differ: differ, Operation: sw.Operation, Segments: spec.Segments, ChunkRows: spec.ChunkRows,
		RateLimit: spec.Rate, RecheckDelay: time.Duration(spec.RecheckDelay), After: sw.Checkpoint,
		OnChunk: func(ctx context.Context, c *reconcile.Chunk) error {
			next := counts
			next.Segments = make(map[string]reconcile.Counts, len(counts.Segments))
			for k, v := range counts.Segments {
				next.Segments[k] = v
			}
			var rows int64
			for k, s := range c.Segments {
				v := next.Segments[k]
				v.Add(s.Counts)
				next.Segments[k] = v
				next.Counts.Add(s.Counts)
				rows += s.Counts.Compared - s.Counts.ExtraInNew
			}
			raw, err := json.Marshal(next)
			if err != nil {
				return err
			}
			err = r.st.CommitSweepChunk(ctx, store.SweepChunk{ID: sw.ID, Owner: r.owner, From: from, To: c.Through,
				Rows: rows, Estimate: estimate, Counts: raw, Lease: r.opts.Lease, Batch: chunkBatch(sw, c, time.Now())})
			if err != nil {
				return err
			}
			counts, from = next, c.Through
			return nil
		},
	}
	_, err = reconcile.Run(ctx, old, nw, opts)
	return err
}

// chunkBatch turns a chunk into the store's counts ([report.Counters]):
// every row compared is a pair, every row that did not match (divergent,
// missing in new, extra in new, invalid) a divergent one; the kinds are
// told apart by the sweep's own counts and by signature.
func chunkBatch(sw store.Sweep, c *reconcile.Chunk, now time.Time) *store.Batch {
	b := &store.Batch{}
	minute := now.UTC().Truncate(time.Minute)
	for key, s := range c.Segments {
		attrs := s.Attrs
		if attrs == nil {
			attrs = map[string]string{}
		}
		b.Counts = append(b.Counts, store.Count{Experiment: sw.Experiment, Operation: sw.Operation, Segment: key, Attrs: attrs,
			Minute: minute, Counters: report.Counters{Pairs: s.Counts.Compared, Divergent: s.Counts.Differences()}, LastStage: "reconcile", LastSeen: now})
		for sig, x := range s.Signatures {
			pats, _ := json.Marshal(x.Patterns)
			if x.Patterns == nil {
				pats = []byte("[]")
			}
			b.Signatures = append(b.Signatures, store.SignatureCount{Experiment: sw.Experiment, Operation: sw.Operation, Segment: key,
				Minute: minute, Signature: sig, Patterns: pats, Count: x.Count, FirstSeen: now, LastSeen: now})
		}
	}
	for _, s := range c.Samples {
		obs := func(doc []byte) json.RawMessage {
			if doc == nil {
				return json.RawMessage(`{"status":"ok"}`)
			}
			v, _ := json.Marshal(map[string]json.RawMessage{"value": doc})
			return v
		}
		diffs, _ := json.Marshal(s.Diffs)
		var paths []string
		for _, d := range s.Diffs {
			paths = append(paths, d.Path)
		}
		verdict := string(diff.VerdictMismatch)
		if s.Kind != reconcile.KindDivergent {
			verdict = s.Kind
		}
		b.Samples = append(b.Samples, store.Sample{PairID: fmt.Sprintf("sweep-%d-%s", sw.ID, s.Key), Experiment: sw.Experiment,
			Operation: sw.Operation, Segment: s.Segment, Kind: "reconcile", Stage: "reconcile", UserKey: "row " + s.Key, Time: now,
			Control: obs(s.Old), Candidate: obs(s.New), Paths: paths, Verdict: verdict, Signature: s.Signature, Diffs: diffs})
	}
	return b
}
