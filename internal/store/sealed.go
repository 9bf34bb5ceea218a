package store

import (
	"cmp"
	"container/list"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parityhq/parity/pkg/report"
)

// maxSealedBytes bounds what a [sealedCache] holds, by the estimate each
// entry carries; the least recently used entries go first.
const maxSealedBytes = 64 << 20

// sealedCache keeps what reads summed over sealed hours: the hours that
// ended more than an hour before the database's clock when they were read.
// Apply moves an experiment's sealed_version (migration 012) whenever it
// writes anything of it into an hour before the database's current hour, so
// while that version stays, no transaction that began within the last hour
// has written into a sealed hour, and one that began earlier has committed
// or failed (Apply gives itself at most maxApplyTime, 10 minutes). Every entry carries the version
// it was read under; a read uses its entries only if the statement that
// reads the rest of its window (the hours since the sealed ones, in one
// snapshot) sees the same version, and reads again otherwise. So an answer
// is always the one the live statement's snapshot holds, never stale.
//
// Nothing else changes a sealed hour's counts: experiments are never
// deleted, and the compactor and the minute pruning only move sums between
// the rollups that hold them.
//
// A dashboard that refreshes a 24-hour window therefore reads about the
// last hour or two from PostgreSQL and the rest from here: the sealed hours
// once per hour (their range moves when the hour does), the minutes at the
// window's start once per hour too (the hour they fall in is cached
// minute by minute).
type sealedCache struct {
	mu    sync.Mutex
	bytes int
	m     map[sealedKey]*list.Element
	lru   list.List // of *sealedEntry, most recently used first
	// misses counts the gets that found nothing, each followed by a read
	// of sealed hours (tests count them).
	misses int
}

// sealedKey names one cached read: which read, of what, over which range.
type sealedKey struct {
	read                           string
	experiment, operation, segment string
	from, to                       time.Time
	step                           time.Duration
}

type sealedEntry struct {
	key     sealedKey
	version int64 // the experiment's sealed_version when read
	value   any
	size    int
}

// get returns the value cached for k and the version it was read under.
func (c *sealedCache) get(k sealedKey) (value any, version int64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[k]
	if !ok {
		c.misses++
		return nil, 0, false
	}
	c.lru.MoveToFront(el)
	e := el.Value.(*sealedEntry)
	return e.value, e.version, true
}

// put caches value, about size bytes, for k as read under version.
func (c *sealedCache) put(k sealedKey, version int64, value any, size int) {
	if size > maxSealedBytes/4 {
		return // one read would push out most others
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[sealedKey]*list.Element{}
	}
	if el, ok := c.m[k]; ok {
		c.remove(el)
	}
	c.m[k] = c.lru.PushFront(&sealedEntry{key: k, version: version, value: value, size: size})
	c.bytes += size
	for c.bytes > maxSealedBytes {
		c.remove(c.lru.Back())
	}
}

// forget drops every entry of experiment.
func (c *sealedCache) forget(experiment string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for el := c.lru.Front(); el != nil; {
		next := el.Next()
		if el.Value.(*sealedEntry).key.experiment == experiment {
			c.remove(el)
		}
		el = next
	}
}

func (c *sealedCache) remove(el *list.Element) {
	e := c.lru.Remove(el).(*sealedEntry)
	delete(c.m, e.key)
	c.bytes -= e.size
}

// errNotSealed reports that the database's clock is less than an hour past
// the hours a read meant to cache (this process's clock runs ahead of it):
// the read answers without the cache.
var errNotSealed = errors.New("store: hours not sealed by the database's clock")

// sealedBefore returns where the sealed hours end at now: the start of the
// hour before now's.
func sealedBefore(now time.Time) time.Time { return now.UTC().Truncate(time.Hour).Add(-time.Hour) }

// readSealed runs read in one read-only snapshot (a repeatable-read
// transaction) after reading, in the same snapshot, experiment's
// sealed_version and rolled_to, which it passes to read and returns the
// version of. It returns errNotSealed unless the hours before sealed are
// sealed by the database's clock, and an error wrapping [ErrNotFound] for
// an unknown experiment.
func (s *Store) readSealed(ctx context.Context, experiment string, sealed time.Time, read func(tx pgx.Tx, rolled time.Time) error) (int64, error) {
	var version int64
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var rolled *time.Time
		var ok bool
		err := tx.QueryRow(ctx, `SELECT sealed_version, rolled_to, $2 <= date_bin('1 hour', now(), `+rollupOrigin+`) - interval '1 hour'
FROM experiments WHERE name = $1`, experiment, sealed).Scan(&version, &rolled, &ok)
		if errors.Is(err, pgx.ErrNoRows) {
			s.rolled.forget(experiment)
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if !ok {
			return errNotSealed
		}
		var r time.Time
		if rolled != nil {
			r = rolled.UTC()
		}
		s.rolled.put(experiment, r)
		return read(tx, r)
	})
	return version, err
}

// maxSealedTries bounds how often a cached read starts over because an
// experiment's sealed_version moved between its cached parts and its live
// statement; after that it answers without the cache.
const maxSealedTries = 2

// segmentSum is what [Store.Segments] sums per segment.
type segmentSum struct {
	SegmentCount
	seen bool // a row of the window counted in it
}

func (a *segmentSum) add(c *SegmentCount) {
	a.seen = true
	a.Counters.Add(c.Counters)
	if c.LastSeen.After(a.LastSeen) {
		a.LastSeen = c.LastSeen
	}
}

// segmentSumOf returns the sum of segment in sums, added if missing.
func segmentSumOf(sums map[string]*segmentSum, segment string) *segmentSum {
	a := sums[segment]
	if a == nil {
		a = &segmentSum{SegmentCount: SegmentCount{Segment: segment}}
		sums[segment] = a
	}
	return a
}

// sealedWindow splits the window [since, until), widened at horizon as
// every read widens it, into the minutes [since, edge) at its start (in
// since's hour) and the whole hours [edge, sealed) before sealedBefore(now),
// both sealed; ok is false when the window does not run to now or has no
// sealed hour.
func sealedWindow(since, until, horizon time.Time) (from, edge, sealed time.Time, ok bool) {
	sealed = sealedBefore(time.Now())
	since, until = widen(since, until, horizon)
	if !until.IsZero() || !since.Before(sealed) {
		return since, since, sealed, false
	}
	edge = since
	if h := since.Truncate(time.Hour); h.Before(since) {
		edge = h.Add(time.Hour)
	}
	return since, edge, sealed, true
}

// minuteTails are, for each segment with counts in one hour, the sums of
// its minutes from each minute of the hour on: a window that starts in the
// hour takes one tail per segment, whatever minute it starts at.
type minuteTails struct {
	segments []string
	tails    [][61]minuteTail // [i][m]: segments[i]'s minutes m… of the hour; [60] is empty
}

// minuteTail is the sum of a segment's minutes from one minute on.
type minuteTail struct {
	report.Counters
	last time.Time
	seen bool // a minute from there on has a row
}

// segmentsSealed answers [Store.Segments] from the sealed-hour cache and
// one statement over the hours since, or reports ok false when the window
// has no sealed hours to cache (it ends before now, or starts within the
// last two hours).
func (s *Store) segmentsSealed(ctx context.Context, experiment string, q SegmentQuery) (out []SegmentCount, ok bool, err error) {
	since, edge, sealed, ok := sealedWindow(q.Since, q.Until, s.horizon(time.Now()))
	if !ok {
		return nil, false, nil
	}
	for range maxSealedTries {
		sums := map[string]*segmentSum{}
		sum := func(c *SegmentCount) { segmentSumOf(sums, c.Segment).add(c) }
		var versions []int64
		if edge.Before(sealed) {
			hours, v, err := s.sealedSegmentHours(ctx, experiment, q.Operation, edge, sealed)
			if err != nil {
				return nil, false, err
			}
			versions = append(versions, v)
			for i := range hours {
				sum(&hours[i])
			}
		}
		if edge.After(since) {
			h := since.Truncate(time.Hour)
			minutes, v, err := s.sealedSegmentMinutes(ctx, experiment, q.Operation, h)
			if err != nil {
				return nil, false, err
			}
			versions = append(versions, v)
			// The minutes that start at or after since.
			m := int((since.Sub(h) + time.Minute - 1) / time.Minute)
			for i, seg := range minutes.segments {
				if t := &minutes.tails[i][m]; t.seen {
					sum(&SegmentCount{Segment: seg, Counters: t.Counters, LastSeen: t.last})
				}
			}
		}
		out, version, err := s.segmentsLive(ctx, experiment, q.Operation, sealed, sums)
		if err != nil {
			return nil, false, err
		}
		if !moved(versions, version) {
			return out, true, nil
		}
		s.sealed.forget(experiment)
	}
	return nil, false, nil
}

// moved reports whether any of versions differs from version.
func moved(versions []int64, version int64) bool {
	for _, v := range versions {
		if v != version {
			return true
		}
	}
	return false
}

// sealedSegmentHours returns experiment's counts per segment over the
// sealed [from, to) (zero from: from the first), of operation op if set,
// and the sealed_version they hold for: cached, or read and cached.
func (s *Store) sealedSegmentHours(ctx context.Context, experiment, op string, from, to time.Time) ([]SegmentCount, int64, error) {
	k := sealedKey{read: "segment-hours", experiment: experiment, operation: op, from: from, to: to}
	if v, version, ok := s.sealed.get(k); ok {
		return v.([]SegmentCount), version, nil
	}
	var out []SegmentCount
	version, err := s.readSealed(ctx, experiment, to, func(tx pgx.Tx, rolled time.Time) error {
		p := params{experiment}
		rows, err := tx.Query(ctx, `SELECT segment, `+sumCounters+`, max(last_seen)
FROM `+countsFrom(&p, "$1", from, to, op, day, s.horizon(time.Now()), rolled, "")+`
GROUP BY segment`, p...)
		if err != nil {
			return err
		}
		out, err = collectSegmentCounts(rows)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: sealed hours of %q: %w", experiment, err)
	}
	s.sealed.put(k, version, out, 64+len(out)*(report.NumCounters*8+64))
	return out, version, nil
}

// sealedSegmentMinutes returns experiment's counts per segment in the
// sealed hour from (of operation op if set) as sums from each minute on,
// and the sealed_version they hold for: cached, or read and cached.
func (s *Store) sealedSegmentMinutes(ctx context.Context, experiment, op string, from time.Time) (*minuteTails, int64, error) {
	k := sealedKey{read: "segment-minutes", experiment: experiment, operation: op, from: from}
	if v, version, ok := s.sealed.get(k); ok {
		return v.(*minuteTails), version, nil
	}
	out := &minuteTails{}
	version, err := s.readSealed(ctx, experiment, from.Add(time.Hour), func(tx pgx.Tx, _ time.Time) error {
		p := params{experiment}
		cond := " AND minute >= " + p.add(from) + " AND minute < " + p.add(from.Add(time.Hour))
		if op != "" {
			cond += " AND operation = " + p.add(op)
		}
		rows, err := tx.Query(ctx, `SELECT segment, minute, `+sumCounters+`, max(last_seen)
FROM pair_counts WHERE experiment = $1`+cond+`
GROUP BY segment, minute ORDER BY segment`, p...)
		if err != nil {
			return err
		}
		var seg string
		var minute time.Time
		var t minuteTail
		scan := []any{&seg, &minute}
		for _, f := range t.Fields() {
			scan = append(scan, f)
		}
		_, err = pgx.ForEachRow(rows, append(scan, &t.last), func() error {
			if n := len(out.segments); n == 0 || out.segments[n-1] != seg {
				out.segments = append(out.segments, seg)
				out.tails = append(out.tails, [61]minuteTail{})
			}
			m := int(minute.Sub(from) / time.Minute)
			if m < 0 || m >= 60 {
				return fmt.Errorf("minute %v outside the hour %v", minute, from)
			}
			t.last, t.seen = t.last.UTC(), true
			out.tails[len(out.tails)-1][m] = t
			return nil
		})
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: sealed minutes of %q: %w", experiment, err)
	}
	for i := range out.tails {
		tails := &out.tails[i]
		for m := 59; m >= 0; m-- {
			t, next := &tails[m], &tails[m+1]
			t.Add(next.Counters)
			t.seen = t.seen || next.seen
			if next.last.After(t.last) {
				t.last = next.last
			}
		}
	}
	s.sealed.put(k, version, out, 64+len(out.tails)*(61*(report.NumCounters*8+32)+16))
	return out, version, nil
}

// collectSegmentCounts reads rows of segment, the counters and last_seen.
func collectSegmentCounts(rows pgx.Rows) ([]SegmentCount, error) {
	out := []SegmentCount{}
	var c SegmentCount
	scan := []any{&c.Segment}
	for _, f := range c.Fields() {
		scan = append(scan, f)
	}
	_, err := pgx.ForEachRow(rows, append(scan, &c.LastSeen), func() error {
		c.LastSeen = c.LastSeen.UTC()
		out = append(out, c)
		return nil
	})
	return out, err
}

// segmentsLive adds experiment's counts from sealed on (of operation op if
// set) to sums and returns the segments with counts in any part, ordered by
// segment, with their attrs, and the sealed_version, all read in one
// statement.
func (s *Store) segmentsLive(ctx context.Context, experiment, op string, sealed time.Time, sums map[string]*segmentSum) ([]SegmentCount, int64, error) {
	p := params{experiment, sealed}
	cond := ""
	if op != "" {
		cond = " AND operation = " + p.add(op)
	}
	// Counts' hours are all written by Apply: no rolled_to to plan for.
	rows, err := s.pool.Query(ctx, `
WITH agg AS (
	SELECT segment, `+sumCounters+`, max(last_seen) AS last_seen
	FROM count_hours WHERE experiment = $1 AND hour >= $2`+cond+`
	GROUP BY segment
)
SELECT v.sealed_version, coalesce(a.segment, g.segment), g.attrs, a.segment IS NOT NULL,
	`+counterList(func(c string) string { return "coalesce(a." + c + ", 0)" })+`, coalesce(a.last_seen, 'epoch')
FROM (SELECT sealed_version FROM experiments WHERE name = $1) v
LEFT JOIN (agg a FULL JOIN (SELECT segment, attrs FROM segments WHERE experiment = $1) g ON g.segment = a.segment) ON true`, p...)
	if err != nil {
		return nil, 0, fmt.Errorf("store: segments of %q: %w", experiment, err)
	}
	version := int64(-1)
	attrs := map[string][]byte{}
	var seg *string
	var raw []byte
	var live bool
	var c SegmentCount
	scan := []any{&version, &seg, &raw, &live}
	for _, f := range c.Fields() {
		scan = append(scan, f)
	}
	_, err = pgx.ForEachRow(rows, append(scan, &c.LastSeen), func() error {
		if seg == nil {
			return nil // an experiment without segments yet
		}
		c.Segment, c.LastSeen = *seg, c.LastSeen.UTC()
		attrs[c.Segment] = raw
		raw = nil
		if live {
			segmentSumOf(sums, c.Segment).add(&c)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: segments of %q: %w", experiment, err)
	}
	if version < 0 {
		return nil, 0, fmt.Errorf("store: segments of %q: %w", experiment, ErrNotFound)
	}
	out := make([]SegmentCount, 0, len(sums))
	for seg, a := range sums {
		if !a.seen {
			continue
		}
		c := a.SegmentCount
		raw := attrs[seg]
		if raw == nil {
			raw = []byte("{}")
		}
		var err error
		if c.Attrs, err = s.attrs.decode(raw); err != nil {
			return nil, 0, fmt.Errorf("store: segments of %q: segment %q: attrs: %w", experiment, seg, err)
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b SegmentCount) int { return strings.Compare(a.Segment, b.Segment) })
	return out, version, nil
}

// signatureKey is one signature in one segment.
type signatureKey struct{ signature, segment string }

// signatureSum is what [Store.Signatures] sums per signature and segment.
type signatureSum struct {
	count       int64
	first, last time.Time
}

func (a *signatureSum) add(b signatureSum) {
	a.count += b.count
	if a.first.IsZero() || b.first.Before(a.first) {
		a.first = b.first
	}
	if b.last.After(a.last) {
		a.last = b.last
	}
}

// signatureSumOf returns the sum of k in sums, added if missing.
func signatureSumOf(sums map[signatureKey]*signatureSum, k signatureKey) *signatureSum {
	a := sums[k]
	if a == nil {
		a = &signatureSum{}
		sums[k] = a
	}
	return a
}

// signatureRow is a signature's counts in one segment (and one minute, for
// the cached minutes).
type signatureRow struct {
	minute time.Time
	signatureKey
	signatureSum
}

// scanSignatureRows reads rows of minute (if withMinute), signature,
// segment, count, first_seen and last_seen.
func scanSignatureRows(rows pgx.Rows, withMinute bool) ([]signatureRow, error) {
	out := []signatureRow{}
	var r signatureRow
	scan := []any{&r.signature, &r.segment, &r.count, &r.first, &r.last}
	if withMinute {
		scan = append([]any{&r.minute}, scan...)
	}
	_, err := pgx.ForEachRow(rows, scan, func() error {
		r.minute, r.first, r.last = r.minute.UTC(), r.first.UTC(), r.last.UTC()
		out = append(out, r)
		return nil
	})
	return out, err
}

// signatureCond returns the condition (" AND …") selecting q's operation and
// segment, if set.
func signatureCond(p *params, q SignatureQuery) string {
	cond := ""
	if q.Operation != "" {
		cond += " AND operation = " + p.add(q.Operation)
	}
	if q.Segment != "" {
		cond += " AND segment = " + p.add(q.Segment)
	}
	return cond
}

// perSignature sums the signature rows of from per signature and segment.
const perSignature = `SELECT signature, segment, sum(count)::int8, min(first_seen), max(last_seen) FROM `

// signaturesSealed answers [Store.Signatures] as segmentsSealed answers
// [Store.Segments], or reports ok false.
func (s *Store) signaturesSealed(ctx context.Context, experiment string, q SignatureQuery, limit int) (out []SignatureSummary, ok bool, err error) {
	horizon := s.horizon(time.Now())
	since, edge, sealed, ok := sealedWindow(q.Since, q.Until, horizon)
	if !ok {
		return nil, false, nil
	}
	for range maxSealedTries {
		sums := map[signatureKey]*signatureSum{}
		sum := func(r *signatureRow) { signatureSumOf(sums, r.signatureKey).add(r.signatureSum) }
		var versions []int64
		if edge.Before(sealed) {
			k := sealedKey{read: "signature-hours", experiment: experiment, operation: q.Operation, segment: q.Segment, from: edge, to: sealed}
			rows, v, err := s.sealedSignatures(ctx, k, func(tx pgx.Tx, rolled time.Time) (pgx.Rows, error) {
				p := params{experiment}
				from := signaturesRollup.from(&p, "$1", signatureCond(&p, q), plan(edge, sealed, day, horizon, lazyLimits(rolled)))
				return tx.Query(ctx, perSignature+from+` GROUP BY 1, 2`, p...)
			}, false)
			if err != nil {
				return nil, false, err
			}
			versions = append(versions, v)
			for i := range rows {
				sum(&rows[i])
			}
		}
		if edge.After(since) {
			h := since.Truncate(time.Hour)
			k := sealedKey{read: "signature-minutes", experiment: experiment, operation: q.Operation, segment: q.Segment, from: h}
			rows, v, err := s.sealedSignatures(ctx, k, func(tx pgx.Tx, _ time.Time) (pgx.Rows, error) {
				p := params{experiment, h, h.Add(time.Hour)}
				return tx.Query(ctx, `SELECT minute, signature, segment, sum(count)::int8, min(first_seen), max(last_seen)
FROM signature_counts WHERE experiment = $1 AND minute >= $2 AND minute < $3`+signatureCond(&p, q)+`
GROUP BY 1, 2, 3`, p...)
			}, true)
			if err != nil {
				return nil, false, err
			}
			versions = append(versions, v)
			for i := range rows {
				if !rows[i].minute.Before(since) {
					sum(&rows[i])
				}
			}
		}
		version, err := s.signaturesLive(ctx, experiment, q, sealed, horizon, sums)
		if err != nil {
			return nil, false, err
		}
		if !moved(versions, version) {
			out, err := s.topSignatures(ctx, experiment, sums, limit)
			return out, err == nil, err
		}
		s.sealed.forget(experiment)
	}
	return nil, false, nil
}

// sealedSignatures returns the signature rows query reads over sealed
// hours (with their minute if withMinute) and the sealed_version they hold
// for: cached under k, or read and cached.
func (s *Store) sealedSignatures(ctx context.Context, k sealedKey, query func(tx pgx.Tx, rolled time.Time) (pgx.Rows, error), withMinute bool) ([]signatureRow, int64, error) {
	if v, version, ok := s.sealed.get(k); ok {
		return v.([]signatureRow), version, nil
	}
	end := k.to
	if end.IsZero() {
		end = k.from.Add(time.Hour)
	}
	var out []signatureRow
	version, err := s.readSealed(ctx, k.experiment, end, func(tx pgx.Tx, rolled time.Time) error {
		rows, err := query(tx, rolled)
		if err != nil {
			return err
		}
		out, err = scanSignatureRows(rows, withMinute)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: sealed signatures of %q: %w", k.experiment, err)
	}
	size := 64
	for _, r := range out {
		size += 96 + len(r.signature) + len(r.segment)
	}
	s.sealed.put(k, version, out, size)
	return out, version, nil
}

// signaturesLive adds experiment's signature counts from sealed on to sums
// and returns the sealed_version, read in one statement.
func (s *Store) signaturesLive(ctx context.Context, experiment string, q SignatureQuery, sealed, horizon time.Time, sums map[signatureKey]*signatureSum) (int64, error) {
	version := int64(-1)
	err := s.readRolled(ctx, experiment, func(rolled time.Time) (int, error) {
		p := params{experiment}
		guard := rolledGuard(&p, rolled)
		from := signaturesRollup.from(&p, "$1", guard+signatureCond(&p, q), plan(sealed, time.Time{}, day, horizon, lazyLimits(rolled)))
		rows, err := s.pool.Query(ctx, `
WITH per AS (`+perSignature+from+` GROUP BY 1, 2)
SELECT v.sealed_version, p.*
FROM (SELECT sealed_version FROM experiments WHERE name = $1`+guard+`) v LEFT JOIN per p ON true`, p...)
		if err != nil {
			return 0, err
		}
		live := map[signatureKey]signatureSum{}
		var sig, seg *string
		var r signatureSum
		var count *int64
		var first, last *time.Time
		n, err := pgx.ForEachRow(rows, []any{&version, &sig, &seg, &count, &first, &last}, func() error {
			if sig != nil {
				r = signatureSum{count: *count, first: first.UTC(), last: last.UTC()}
				live[signatureKey{*sig, *seg}] = r
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
		for k, r := range live { // only once the statement answered
			signatureSumOf(sums, k).add(r)
		}
		return int(n.RowsAffected()), nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: signatures of %q: %w", experiment, err)
	}
	return version, nil
}

// topSignatures returns the limit signatures of sums with the highest
// counts (then by signature), each with its patterns.
func (s *Store) topSignatures(ctx context.Context, experiment string, sums map[signatureKey]*signatureSum, limit int) ([]SignatureSummary, error) {
	bySig := map[string]*SignatureSummary{}
	for k, a := range sums {
		g := bySig[k.signature]
		if g == nil {
			g = &SignatureSummary{Signature: k.signature, FirstSeen: a.first}
			bySig[k.signature] = g
		}
		g.Count += a.count
		g.Segments++
		if a.first.Before(g.FirstSeen) {
			g.FirstSeen = a.first
		}
		if a.last.After(g.LastSeen) {
			g.LastSeen = a.last
		}
	}
	out := make([]SignatureSummary, 0, len(bySig))
	for _, g := range bySig {
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b SignatureSummary) int {
		if a.Count != b.Count {
			return cmp.Compare(b.Count, a.Count)
		}
		return strings.Compare(a.Signature, b.Signature)
	})
	out = out[:min(limit, len(out))]
	if len(out) == 0 {
		return out, nil
	}
	names := make([]string, len(out))
	for i, g := range out {
		names[i] = g.Signature
	}
	rows, err := s.pool.Query(ctx, `SELECT signature, patterns FROM signatures WHERE experiment = $1 AND signature = ANY($2)`, experiment, names)
	if err != nil {
		return nil, fmt.Errorf("store: signatures of %q: %w", experiment, err)
	}
	patterns := map[string][]byte{}
	var name string
	var raw []byte
	if _, err := pgx.ForEachRow(rows, []any{&name, &raw}, func() error {
		patterns[name] = raw
		raw = nil
		return nil
	}); err != nil {
		return nil, fmt.Errorf("store: signatures of %q: %w", experiment, err)
	}
	for i := range out {
		out[i].Patterns = patterns[out[i].Signature]
		if out[i].Patterns == nil {
			out[i].Patterns = []byte("[]")
		}
	}
	return out, nil
}

// querier is what reads run statements on: the pool, or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// latenciesSealed answers [Store.Latencies] over the whole hours [since,
// until) as segmentsSealed answers [Store.Segments], or reports ok false.
func (s *Store) latenciesSealed(ctx context.Context, experiment, op string, since, until time.Time) (out []LatencyRow, ok bool, err error) {
	sealed := sealedBefore(time.Now())
	if !until.IsZero() || !since.Before(sealed) {
		return nil, false, nil
	}
	k := sealedKey{read: "latency-hours", experiment: experiment, operation: op, from: since, to: sealed}
	for range maxSealedTries {
		var cached []LatencyRow
		v, version, ok := s.sealed.get(k)
		if ok {
			cached = v.([]LatencyRow)
		} else {
			version, err = s.readSealed(ctx, experiment, sealed, func(tx pgx.Tx, rolled time.Time) error {
				var err error
				cached, _, err = s.latencies(ctx, tx, experiment, op, since, sealed, rolled)
				return err
			})
			if err != nil {
				return nil, false, fmt.Errorf("store: sealed latencies of %q: %w", experiment, err)
			}
			size := 64
			for _, r := range cached {
				size += 64 + len(r.Segment) + 8*(len(r.Control)+len(r.Candidate))
			}
			s.sealed.put(k, version, cached, size)
		}
		out, live, err := s.latenciesLive(ctx, experiment, op, sealed, cached)
		if err != nil {
			return nil, false, err
		}
		if live == version {
			return out, true, nil
		}
		s.sealed.forget(experiment)
	}
	return nil, false, nil
}

// latenciesLive merges experiment's latency hours from sealed on (of
// operation op if set) into cached and returns the merge, ordered by
// segment, and the sealed_version, read in one statement.
func (s *Store) latenciesLive(ctx context.Context, experiment, op string, sealed time.Time, cached []LatencyRow) ([]LatencyRow, int64, error) {
	p := params{experiment, sealed}
	cond := ""
	if op != "" {
		cond = " AND operation = " + p.add(op)
	}
	// Latency hours are all written by Apply: no rolled_to to plan for.
	rows, err := s.pool.Query(ctx, `
SELECT v.sealed_version, l.segment, l.control, l.candidate
FROM (SELECT sealed_version FROM experiments WHERE name = $1) v
LEFT JOIN (SELECT segment, control, candidate FROM latency_hours WHERE experiment = $1 AND hour >= $2`+cond+`) l ON true`, p...)
	if err != nil {
		return nil, 0, fmt.Errorf("store: latencies of %q: %w", experiment, err)
	}
	bySegment := map[string]*[2]histogramSum{}
	add := func(seg string, enc [2][]int64) error {
		sums := bySegment[seg]
		if sums == nil {
			sums = new([2]histogramSum)
			bySegment[seg] = sums
		}
		for i, side := range [2]string{"control", "candidate"} {
			if err := sums[i].addEncoding(enc[i]); err != nil {
				return fmt.Errorf("segment %q: %s: %w", seg, side, err)
			}
		}
		return nil
	}
	version := int64(-1)
	var seg *string
	var enc [2][]int64
	_, err = pgx.ForEachRow(rows, []any{&version, &seg, &enc[0], &enc[1]}, func() error {
		if seg == nil {
			return nil
		}
		return add(*seg, enc)
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: latencies of %q: %w", experiment, err)
	}
	if version < 0 {
		return nil, 0, fmt.Errorf("store: latencies of %q: %w", experiment, ErrNotFound)
	}
	for _, r := range cached {
		if err := add(r.Segment, [2][]int64{r.Control, r.Candidate}); err != nil {
			return nil, 0, fmt.Errorf("store: latencies of %q: %w", experiment, err)
		}
	}
	out := make([]LatencyRow, 0, len(bySegment))
	for seg, sums := range bySegment {
		r := LatencyRow{Segment: seg, Control: sums[0].encode(), Candidate: sums[1].encode()}
		if len(r.Control) > 0 || len(r.Candidate) > 0 {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b LatencyRow) int { return strings.Compare(a.Segment, b.Segment) })
	return out, version, nil
}

// seriesSealed answers [Store.Series] as segmentsSealed answers
// [Store.Segments], or reports ok false: the buckets that end by the
// sealed hours come from the cache, the rest from one statement.
func (s *Store) seriesSealed(ctx context.Context, experiment string, q SegmentQuery, step time.Duration) (out []SeriesPoint, ok bool, err error) {
	now := time.Now()
	horizon := s.horizon(now)
	// Buckets start at multiples of step from seriesOrigin, Go's zero time.
	// A window whose start is not a bucket's (a short chart's, which moves
	// with every request) would be kept once per request: read it whole.
	b := sealedBefore(now).Truncate(step)
	if !q.Until.IsZero() || !q.Since.Before(b) || b.Before(horizon) || !q.Since.Truncate(step).Equal(q.Since) {
		return nil, false, nil
	}
	k := sealedKey{read: "series", experiment: experiment, operation: q.Operation, from: q.Since, to: b, step: step}
	for range maxSealedTries {
		var cached []SeriesPoint
		v, version, ok := s.sealed.get(k)
		if ok {
			cached = v.([]SeriesPoint)
		} else {
			version, err = s.readSealed(ctx, experiment, b, func(tx pgx.Tx, rolled time.Time) error {
				p := params{experiment, step}
				from := countsFrom(&p, "$1", q.Since, b, q.Operation, coarsestFor(step), horizon, rolled, "")
				rows, err := tx.Query(ctx, seriesSQL(from), p...)
				if err != nil {
					return err
				}
				cached, err = collectSeries(rows)
				return err
			})
			if err != nil {
				return nil, false, fmt.Errorf("store: sealed series of %q: %w", experiment, err)
			}
			size := 64
			for _, pt := range cached {
				size += 80 + len(pt.Segment)
			}
			s.sealed.put(k, version, cached, size)
		}
		live := int64(-1)
		var points []SeriesPoint
		err := s.readRolled(ctx, experiment, func(rolled time.Time) (int, error) {
			p := params{experiment, step}
			guard := rolledGuard(&p, rolled)
			from := countsFrom(&p, "$1", b, time.Time{}, q.Operation, coarsestFor(step), horizon, rolled, guard)
			rows, err := s.pool.Query(ctx, `
WITH pts AS (`+seriesSQL(from)+`)
SELECT v.sealed_version, p.*
FROM (SELECT sealed_version FROM experiments WHERE name = $1`+guard+`) v LEFT JOIN pts p ON true`, p...)
			if err != nil {
				return 0, err
			}
			points = points[:0]
			var seg *string
			var at *time.Time
			var pairs, divergent *int64
			n, err := pgx.ForEachRow(rows, []any{&live, &seg, &at, &pairs, &divergent}, func() error {
				if seg != nil {
					points = append(points, SeriesPoint{Segment: *seg, At: at.UTC(), Pairs: *pairs, Divergent: *divergent})
				}
				return nil
			})
			return int(n.RowsAffected()), err
		})
		if err != nil {
			return nil, false, fmt.Errorf("store: series of %q: %w", experiment, err)
		}
		if live == version {
			out := append(slices.Clip(cached), points...)
			slices.SortFunc(out, func(a, b SeriesPoint) int {
				return cmp.Or(strings.Compare(a.Segment, b.Segment), a.At.Compare(b.At))
			})
			return out, true, nil
		}
		s.sealed.forget(experiment)
	}
	return nil, false, nil
}
