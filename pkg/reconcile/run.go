package reconcile

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/parityhq/parity/pkg/diff"
)

// Run reconciles old against new: chunk by chunk in key order, each chunk
// compared by checksum first when both sides can (see [Checksummer]) and row
// by row where the checksums differ, rows judged by opts.Differ under the
// rules of opts.Operation. Rows that differ are read again after
// opts.RecheckDelay and only the second judgement counts.
//
// Run returns the sum of the chunks it committed (see [Options.OnChunk]),
// also when it stops early on an error or when ctx ends: then the error says
// why, and a later Run with [Options.After] set to the last committed
// chunk's Through continues where this one stopped, counting every row
// exactly once.
func Run(ctx context.Context, old, new Source, opts Options) (*Result, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	plan, err := check(ctx, old, new, opts)
	if err != nil {
		return nil, err
	}
	return RunPlan(ctx, old, new, plan, opts)
}

// RunPlan is [Run] with the [Plan] a [Check] returned, so a caller can show
// or store it before rows are compared.
func RunPlan(ctx context.Context, old, new Source, plan Plan, opts Options) (*Result, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &runner{old: old, new: new, plan: plan, opts: opts, start: time.Now(),
		res: &Result{Segments: map[string]*Segment{}, Checksum: plan.Checksum, ChecksumColumns: plan.ChecksumColumns}}
	if plan.Checksum {
		r.oldSum, r.newSum = old.(Checksummer), new.(Checksummer)
	}
	if e, ok := old.(Estimator); ok {
		if n, err := e.EstimateRows(ctx); err == nil && n > 0 {
			r.estimate = n
		}
	}
	err = r.run(ctx)
	return r.res, err
}

type runner struct {
	old, new       Source
	oldSum, newSum Checksummer
	plan           Plan
	opts           Options
	res            *Result
	start          time.Time
	estimate       int64
	rowsDone       int64
	pending        []*pendingChunk
	pendingRows    int
	nextAt         time.Time // rate limit
}

// suspect is a row seen to differ, waiting for its second look.
type suspect struct {
	key     string
	segment []string
}

type pendingChunk struct {
	c        *Chunk
	oldRows  int64
	suspects []suspect
	due      time.Time
}

// item is one chunk of the old side, read ahead.
type item struct {
	after, through *string
	sum            Sum   // checksum mode
	rows           []Row // row mode
	n              int64 // old rows in the chunk
	err            error
}

func (r *runner) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	items := make(chan item, 1)
	go r.readAhead(ctx, items)
	for it := range items {
		if it.err != nil {
			return it.err
		}
		if err := r.limit(ctx, it.n); err != nil {
			return err
		}
		pc, err := r.chunk(ctx, it)
		if err != nil {
			return err
		}
		r.pending = append(r.pending, pc)
		r.pendingRows += len(pc.suspects)
		if err := r.drain(ctx, false); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := r.drain(ctx, true); err != nil {
		return err
	}
	r.res.Complete = true
	return nil
}

// readAhead reads the old side's chunks in key order, one ahead of the
// comparison, so both databases work at once.
func (r *runner) readAhead(ctx context.Context, out chan<- item) {
	defer close(out)
	after := r.opts.After
	n := r.opts.ChunkRows
	for {
		it := item{after: after}
		req := Request{After: after, Limit: n, Segments: r.opts.Segments, Columns: r.plan.ChecksumColumns, AsText: r.plan.AsText}
		full := false
		if r.oldSum != nil {
			it.sum, it.err = r.oldSum.Checksum(ctx, req)
			it.n = it.sum.Rows
			if it.err == nil && it.sum.Rows >= int64(n) {
				full = true
				last := it.sum.Last
				it.through = &last
			}
		} else {
			it.rows, it.err = r.old.Rows(ctx, req)
			it.n = int64(len(it.rows))
			if it.err == nil && len(it.rows) >= n {
				full = true
				last := it.rows[len(it.rows)-1].Key
				it.through = &last
			}
		}
		if it.err != nil {
			it.err = fmt.Errorf("reconcile: %s side: %w", r.plan.Old.Side, it.err)
		}
		select {
		case out <- it:
		case <-ctx.Done():
			return
		}
		if it.err != nil || !full {
			return
		}
		after = it.through
	}
}

// limit waits so that at most RateLimit old rows are read per second.
func (r *runner) limit(ctx context.Context, rows int64) error {
	if r.opts.RateLimit <= 0 {
		return nil
	}
	now := time.Now()
	if r.nextAt.Before(now) {
		r.nextAt = now
	}
	wait := r.nextAt.Sub(now)
	r.nextAt = r.nextAt.Add(time.Duration(float64(rows) / r.opts.RateLimit * float64(time.Second)))
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *runner) newChunk(after, through *string) *Chunk {
	return &Chunk{After: after, Through: through, Segments: map[string]*Segment{}}
}

// chunk compares one chunk and returns it with the rows to look at again.
func (r *runner) chunk(ctx context.Context, it item) (*pendingChunk, error) {
	pc := &pendingChunk{c: r.newChunk(it.after, it.through), oldRows: it.n}
	if r.newSum != nil {
		pc.c.Checksummed = true
		ns, err := r.newSum.Checksum(ctx, Request{After: it.after, Through: it.through, Segments: r.opts.Segments, Columns: r.plan.ChecksumColumns, AsText: r.plan.AsText})
		if err != nil {
			return nil, fmt.Errorf("reconcile: %s side: %w", r.plan.New.Side, err)
		}
		if err := r.compareSums(ctx, pc, it.after, it.through, it.sum, ns); err != nil {
			return nil, err
		}
	} else if err := r.compareRows(ctx, pc, it.after, it.through, it.rows); err != nil {
		return nil, err
	}
	pc.due = time.Now().Add(r.opts.RecheckDelay)
	return pc, nil
}

func sumsEqual(a, b Sum) bool {
	if a.Rows != b.Rows {
		return false
	}
	if a.Rows == 0 {
		return true
	}
	return a.Hash == b.Hash
}

// compareSums settles the range (after, through] given both sides' sums:
// equal sums are matched rows; otherwise the range is split and compared
// again, or compared row by row once small.
func (r *runner) compareSums(ctx context.Context, pc *pendingChunk, after, through *string, os, ns Sum) error {
	if sumsEqual(os, ns) {
		for _, s := range os.Segments {
			seg := pc.c.segment(segmentKey(r.opts.Segments, s.Values), r.opts.Segments, s.Values)
			seg.Counts.Compared += s.Rows
			seg.Counts.Matched += s.Rows
		}
		return nil
	}
	if os.Rows <= int64(r.opts.LeafRows) {
		return r.compareRows(ctx, pc, after, through, nil)
	}
	part := int((os.Rows + int64(r.opts.Split) - 1) / int64(r.opts.Split))
	prev := after
	for {
		req := Request{After: prev, Through: through, Limit: part, Segments: r.opts.Segments, Columns: r.plan.ChecksumColumns, AsText: r.plan.AsText}
		osub, err := r.oldSum.Checksum(ctx, req)
		if err != nil {
			return fmt.Errorf("reconcile: %s side: %w", r.plan.Old.Side, err)
		}
		subThrough := through
		last := osub.Rows < int64(part)
		if !last {
			k := osub.Last
			subThrough = &k
		}
		nsub, err := r.newSum.Checksum(ctx, Request{After: prev, Through: subThrough, Segments: r.opts.Segments, Columns: r.plan.ChecksumColumns, AsText: r.plan.AsText})
		if err != nil {
			return fmt.Errorf("reconcile: %s side: %w", r.plan.New.Side, err)
		}
		if last && osub.Rows == 0 && nsub.Rows == 0 {
			return nil
		}
		if err := r.compareSums(ctx, pc, prev, subThrough, osub, nsub); err != nil {
			return err
		}
		if last {
			return nil
		}
		prev = subThrough
	}
}

// compareRows compares the range (after, through] row by row, a page at a
// time; first, when not nil, holds the old side's rows of the whole range.
func (r *runner) compareRows(ctx context.Context, pc *pendingChunk, after, through *string, first []Row) error {
	page := r.opts.ChunkRows
	a := after
	for {
		var orows []Row
		var err error
		b := through
		if first != nil {
			orows, first = first, nil
		} else {
			orows, err = r.old.Rows(ctx, Request{After: a, Through: through, Limit: page, Segments: r.opts.Segments})
			if err != nil {
				return fmt.Errorf("reconcile: %s side: %w", r.plan.Old.Side, err)
			}
			if len(orows) >= page {
				k := orows[len(orows)-1].Key
				b = &k
			}
		}
		nlimit := 2*page + 1
		nrows, err := r.new.Rows(ctx, Request{After: a, Through: b, Limit: nlimit, Segments: r.opts.Segments})
		if err != nil {
			return fmt.Errorf("reconcile: %s side: %w", r.plan.New.Side, err)
		}
		if len(nrows) >= nlimit {
			// Many more rows on the new side: end this page at its last
			// one, and read the old side's rows up to there again.
			k := nrows[len(nrows)-1].Key
			b = &k
			if orows, err = r.old.Rows(ctx, Request{After: a, Through: b, Segments: r.opts.Segments}); err != nil {
				return fmt.Errorf("reconcile: %s side: %w", r.plan.Old.Side, err)
			}
		}
		r.res.FetchedRows += int64(len(orows) + len(nrows))
		r.judgeRows(pc, orows, nrows)
		if b == through {
			return nil
		}
		a = b
	}
}

// judgeRows compares one page: rows of equal keys are judged, rows on one
// side only are missing or extra. Matches count at once; the rest wait for
// their second look.
func (r *runner) judgeRows(pc *pendingChunk, orows, nrows []Row) {
	idx := make(map[string]int, len(nrows))
	for i, n := range nrows {
		idx[n.Key] = i
	}
	seen := make([]bool, len(nrows))
	for i := range orows {
		o := &orows[i]
		j, ok := idx[o.Key]
		if ok {
			seen[j] = true
			if r.opts.Differ.ValuesFor(r.plan.Operation, o.Doc, nrows[j].Doc).Verdict == diff.VerdictMatch {
				seg := pc.c.segment(segmentKey(r.opts.Segments, o.Segment), r.opts.Segments, o.Segment)
				seg.Counts.Compared++
				seg.Counts.Matched++
				continue
			}
		}
		pc.suspects = append(pc.suspects, suspect{key: o.Key, segment: o.Segment})
	}
	for j := range nrows {
		if !seen[j] {
			pc.suspects = append(pc.suspects, suspect{key: nrows[j].Key, segment: nrows[j].Segment})
		}
	}
}

// drain finishes the pending chunks in order: those whose second look is
// due (all of them when final, or while too many rows wait), then commits
// them.
func (r *runner) drain(ctx context.Context, final bool) error {
	for len(r.pending) > 0 {
		pc := r.pending[0]
		wait := time.Until(pc.due)
		if len(pc.suspects) > 0 && wait > 0 && r.opts.RecheckDelay > 0 {
			if !final && r.pendingRows <= r.opts.MaxPending {
				return nil
			}
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
		}
		if err := r.recheck(ctx, pc); err != nil {
			return err
		}
		if err := r.commit(ctx, pc); err != nil {
			return err
		}
		r.pending = r.pending[1:]
		r.pendingRows -= len(pc.suspects)
	}
	return nil
}

// recheck reads the chunk's suspects again from both sides and judges them
// for good.
func (r *runner) recheck(ctx context.Context, pc *pendingChunk) error {
	if len(pc.suspects) == 0 {
		return nil
	}
	const batch = 1000
	for i := 0; i < len(pc.suspects); i += batch {
		sus := pc.suspects[i:min(i+batch, len(pc.suspects))]
		keys := make([]string, len(sus))
		for j, s := range sus {
			keys[j] = s.key
		}
		req := Request{Keys: keys, Segments: r.opts.Segments}
		var orows, nrows []Row
		var oerr, nerr error
		done := make(chan struct{})
		go func() {
			defer close(done)
			nrows, nerr = r.new.Rows(ctx, req)
		}()
		orows, oerr = r.old.Rows(ctx, req)
		<-done
		if oerr != nil {
			return fmt.Errorf("reconcile: %s side: %w", r.plan.Old.Side, oerr)
		}
		if nerr != nil {
			return fmt.Errorf("reconcile: %s side: %w", r.plan.New.Side, nerr)
		}
		r.res.FetchedRows += int64(len(orows) + len(nrows))
		om := make(map[string]*Row, len(orows))
		for k := range orows {
			om[orows[k].Key] = &orows[k]
		}
		nm := make(map[string]*Row, len(nrows))
		for k := range nrows {
			nm[nrows[k].Key] = &nrows[k]
		}
		for _, s := range sus {
			r.final(pc.c, s, om[s.key], nm[s.key])
		}
	}
	return nil
}

// final judges one row for good and counts it in its segment.
func (r *runner) final(c *Chunk, s suspect, o, n *Row) {
	key := segmentKey(r.opts.Segments, s.segment)
	seg := c.segment(key, r.opts.Segments, s.segment)
	seg.Counts.Compared++
	sample := Sample{Key: s.key, Segment: key}
	switch {
	case o == nil && n == nil:
		// Deleted on both sides since: they agree.
		seg.Counts.Matched++
		return
	case n == nil:
		seg.Counts.MissingInNew++
		seg.sign(KindMissingInNew, nil)
		sample.Kind, sample.Signature, sample.Old = KindMissingInNew, KindMissingInNew, o.Doc
	case o == nil:
		seg.Counts.ExtraInNew++
		seg.sign(KindExtraInNew, nil)
		sample.Kind, sample.Signature, sample.New = KindExtraInNew, KindExtraInNew, n.Doc
	default:
		res := r.opts.Differ.ValuesFor(r.plan.Operation, o.Doc, n.Doc)
		switch res.Verdict {
		case diff.VerdictMatch:
			seg.Counts.Matched++
			return
		case diff.VerdictInvalidJSON:
			seg.Counts.Invalid++
			seg.sign(KindInvalid, nil)
			sample.Kind, sample.Signature, sample.Reason = KindInvalid, KindInvalid, res.Reason
		default:
			seg.Counts.Divergent++
			seg.sign(res.Signature, &res)
			sample.Kind, sample.Signature = KindDivergent, res.Signature
		}
		sample.Old, sample.New = o.Doc, n.Doc
	}
	if len(c.Samples) < r.opts.SamplesPerChunk {
		if sample.Kind == KindDivergent {
			ex := r.opts.Differ.ExplainValues(r.plan.Operation, o.Doc, n.Doc)
			sample.Patterns, sample.Diffs = ex.Patterns(), ex.Diffs
		}
		c.Samples = append(c.Samples, sample)
	}
}

// commit hands a final chunk to OnChunk and adds it to the result.
func (r *runner) commit(ctx context.Context, pc *pendingChunk) error {
	if r.opts.OnChunk != nil {
		if err := r.opts.OnChunk(ctx, pc.c); err != nil {
			return fmt.Errorf("reconcile: commit chunk: %w", err)
		}
	}
	res := r.res
	res.Chunks++
	if pc.c.Checksummed {
		res.ChecksumChunks++
	}
	for k, s := range pc.c.Segments {
		t := res.Segments[k]
		if t == nil {
			t = &Segment{Key: k, Attrs: s.Attrs}
			res.Segments[k] = t
		}
		t.merge(s)
		res.Counts.Add(s.Counts)
	}
	for _, s := range pc.c.Samples {
		if len(res.Samples) < r.opts.MaxSamples {
			res.Samples = append(res.Samples, s)
		}
	}
	r.rowsDone += pc.oldRows
	if r.opts.OnProgress != nil {
		r.opts.OnProgress(Progress{Rows: r.rowsDone, Estimate: r.estimate, Differences: res.Counts.Differences(),
			Chunks: res.Chunks, Elapsed: time.Since(r.start)})
	}
	return nil
}

// AddHashes adds decimal hash sums modulo 2^64, for sources that sum row
// hashes per group and need one [Sum.Hash].
func AddHashes(sums ...string) (string, error) {
	total := new(big.Int)
	for _, s := range sums {
		v, ok := new(big.Int).SetString(s, 10)
		if !ok {
			return "", errors.New("reconcile: hash sum is not a decimal number")
		}
		total.Add(total, v)
	}
	return total.Mod(total, new(big.Int).Lsh(big.NewInt(1), 64)).String(), nil
}
