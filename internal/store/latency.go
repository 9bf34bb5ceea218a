package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Latencies returns experiment's latency histograms per segment, in the
// encoding of [report.Histogram.Encode], merged over the hours that overlap
// [q.Since, q.Until) and, if q.Operation is set, over that operation only.
// Latencies are kept per hour, so the window is widened to whole hours: an
// hour counts in full if any part of it lies in the window (Since 10:30
// starts at 10:00). Rows are ordered by segment; segments without latencies
// in those hours are left out. The merge is exact: each histogram is the
// [report.Histogram.Merge] of every histogram applied for its hours. It
// returns an error wrapping [ErrNotFound] for an unknown experiment. A
// window to now is answered through the sealed-hour cache, as
// [Store.Segments] is.
func (s *Store) Latencies(ctx context.Context, experiment string, q SegmentQuery) ([]LatencyRow, error) {
	// The rows come to Go and merge there: at a day of 50 segments (1,200
	// rows) that is several times faster than merging in SQL with an
	// aggregate over parity_hist_add, which costs a PL/pgSQL call per row and
	// side. The arrays are read in PostgreSQL's binary format and added
	// straight into one set of buckets per side, as report.Histogram.Merge
	// adds: decoding each into a []int64 and a report.Histogram first costs
	// as much again in allocations.
	//
	// The hours are [since's hour, until's hour rounded up): whole days
	// inside them come from latency_days, the hours at their ends from
	// latency_hours, or, where fewer rows answer, from their day less the
	// hours of it outside the window (histograms add bucket by bucket, so
	// they subtract exactly): see latencyParts.
	since, until := q.Since.Truncate(time.Hour), q.Until
	if !until.IsZero() {
		if h := until.Truncate(time.Hour); h.Before(until) {
			until = h.Add(time.Hour)
		}
	}
	if out, ok, err := s.latenciesSealed(ctx, experiment, q.Operation, since, until); ok || (err != nil && !errors.Is(err, errNotSealed)) {
		return out, err
	}
	return s.latenciesRead(ctx, experiment, q.Operation, since, until)
}

// latenciesRead is [Store.Latencies] over the whole hours [since, until)
// without the sealed-hour cache.
func (s *Store) latenciesRead(ctx context.Context, experiment, operation string, since, until time.Time) ([]LatencyRow, error) {
	var out []LatencyRow
	err := s.readRolled(ctx, experiment, func(rolled time.Time) (int, error) {
		var n int
		var err error
		out, n, err = s.latencies(ctx, s.pool, experiment, operation, since, until, rolled)
		return n, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: latencies of %q: %w", experiment, err)
	}
	return out, nil
}

// latencies is one run of [Store.Latencies] over the whole hours [since,
// until) for the rolled_to rolled (checked by the statement: [rolledGuard]),
// returning the rows read besides the answer.
func (s *Store) latencies(ctx context.Context, db querier, experiment, operation string, since, until, rolled time.Time) ([]LatencyRow, int, error) {
	p := params{experiment}
	cond := " AND (cardinality(control) > 0 OR cardinality(candidate) > 0)" + rolledGuard(&p, rolled)
	if operation != "" {
		cond += " AND operation = " + p.add(operation)
	}
	var qs []string
	for _, pt := range latencyParts(since, until, rolled) {
		table, col := "latency_hours", "hour"
		if pt.unit == day {
			table, col = "latency_days", "day"
		}
		w := "SELECT segment, control, candidate, " + strconv.Itoa(pt.sign) + " AS sign FROM " + table + " WHERE experiment = $1" + cond
		if !pt.from.IsZero() {
			w += " AND " + col + " >= " + p.add(pt.from)
		}
		if !pt.to.IsZero() {
			w += " AND " + col + " < " + p.add(pt.to)
		}
		qs = append(qs, w)
	}
	if len(qs) == 0 {
		qs = append(qs, "SELECT segment, control, candidate, 1 AS sign FROM latency_hours WHERE experiment = $1"+cond+" AND false")
	}
	// No ORDER BY: sorting thousands of wide rows would spill to disk; the
	// rows are summed per segment in Go, in any order.
	rows, err := db.Query(ctx, strings.Join(qs, "\nUNION ALL\n"), p...)
	if err != nil {
		return nil, 0, err
	}
	n := 0
	bySegment := map[string]*[2]histogramSum{} // control, candidate
	add := func(seg []byte, values func(sums *[2]histogramSum, i int) error) error {
		n++
		sums, ok := bySegment[string(seg)]
		if !ok {
			sums = new([2]histogramSum)
			bySegment[string(seg)] = sums
		}
		for i, side := range [2]string{"control", "candidate"} {
			if err := values(sums, i); err != nil {
				return fmt.Errorf("segment %q: %s: %w", seg, side, err)
			}
		}
		return nil
	}
	if fd := rows.FieldDescriptions(); len(fd) == 4 && fd[1].Format == pgx.BinaryFormatCode && fd[2].Format == pgx.BinaryFormatCode &&
		fd[3].Format == pgx.BinaryFormatCode {
		// The raw values, valid until the next row: text arrives as its
		// bytes, the arrays in PostgreSQL's binary array format, the sign
		// as a big-endian int4.
		for rows.Next() {
			raw := rows.RawValues()
			sign := int64(int32(binary.BigEndian.Uint32(raw[3])))
			if err = add(raw[0], func(sums *[2]histogramSum, i int) error { return sums[i].addBinarySigned(raw[1+i], sign) }); err != nil {
				break
			}
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	} else { // the simple protocol, which sends text
		var seg string
		var enc [2][]int64
		var sign int64
		_, err = pgx.ForEachRow(rows, []any{&seg, &enc[0], &enc[1], &sign}, func() error {
			return add([]byte(seg), func(sums *[2]histogramSum, i int) error { return sums[i].addEncodingSigned(enc[i], sign) })
		})
	}
	if err != nil {
		return nil, 0, err
	}
	out := make([]LatencyRow, 0, len(bySegment))
	for seg, sums := range bySegment {
		r := LatencyRow{Segment: seg, Control: sums[0].encode(), Candidate: sums[1].encode()}
		if len(r.Control) > 0 || len(r.Candidate) > 0 { // all its hours subtracted: none in the window
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b LatencyRow) int { return strings.Compare(a.Segment, b.Segment) })
	return out, n, nil
}

// Variants returns experiment's pairs and divergent pairs per flag variant
// and targeting reason, summed over the minutes whose start lies in
// [q.Since, q.Until) and, if q.Operation is set, over that operation only
// (each row then carries it; otherwise Operation is empty). Minute is zero.
// Rows are ordered by variant, then reason. It returns an error wrapping
// [ErrNotFound] for an unknown experiment.
func (s *Store) Variants(ctx context.Context, experiment string, q SegmentQuery) ([]VariantCount, error) {
	horizon := s.horizon(time.Now())
	var out []VariantCount
	err := s.readRolled(ctx, experiment, func(rolled time.Time) (int, error) {
		p := params{experiment}
		cond := rolledGuard(&p, rolled)
		if q.Operation != "" {
			cond += " AND operation = " + p.add(q.Operation)
		}
		from := variantsRollup.from(&p, "$1", cond, plan(q.Since, q.Until, day, horizon, lazyLimits(rolled)))
		rows, err := s.pool.Query(ctx, `
SELECT variant, reason, sum(pairs)::int8, sum(divergent)::int8 FROM `+from+`
GROUP BY variant, reason
ORDER BY variant, reason`, p...)
		if err != nil {
			return 0, err
		}
		out = []VariantCount{}
		v := VariantCount{Experiment: experiment, Operation: q.Operation}
		_, err = pgx.ForEachRow(rows, []any{&v.Variant, &v.Reason, &v.Pairs, &v.Divergent}, func() error {
			out = append(out, v)
			return nil
		})
		return len(out), err
	})
	if err != nil {
		return nil, fmt.Errorf("store: variants of %q: %w", experiment, err)
	}
	return out, nil
}

// signedPart is a part of a latency read whose histograms are added (sign
// 1) or subtracted (sign -1).
type signedPart struct {
	part
	sign int
}

// latencyParts splits the whole hours [since, until) (zero: unbounded) into
// the parts of latency_hours and latency_days to read: the whole days
// inside before rolledTo (before which the days are written) from the days,
// and each ragged end, which lies inside one day, either hour by hour or,
// before rolledTo, as that day less its hours outside the window, whichever
// reads fewer rows. Hours from rolledTo on are read hour by hour.
func latencyParts(since, until, rolledTo time.Time) []signedPart {
	var parts []signedPart
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		return nil
	}
	// What lies from rolledTo on has no days yet.
	if !until.IsZero() && !until.After(rolledTo) {
		rolledTo = until
	}
	if !rolledTo.IsZero() && (since.IsZero() || since.Before(rolledTo)) {
		parts = daysAndHours(parts, since, rolledTo)
		since = rolledTo
	}
	if until.IsZero() || since.Before(until) {
		parts = append(parts, signedPart{part{time.Hour, since, until}, 1})
	}
	return parts
}

// daysAndHours appends the parts that read the whole hours [since, until)
// (since zero: unbounded; until a whole hour), all of whose days are
// written.
func daysAndHours(parts []signedPart, since, until time.Time) []signedPart {
	// region adds the hours [a, b), which lie in the day starting at d.
	region := func(a, b, d time.Time) {
		if !a.Before(b) {
			return
		}
		direct := int(b.Sub(a) / time.Hour)
		if complement := 1 + int(a.Sub(d)/time.Hour) + int(d.Add(day).Sub(b)/time.Hour); direct <= complement {
			parts = append(parts, signedPart{part{time.Hour, a, b}, 1})
			return
		}
		parts = append(parts, signedPart{part{day, d, d.Add(day)}, 1})
		if d.Before(a) {
			parts = append(parts, signedPart{part{time.Hour, d, a}, -1})
		}
		if b.Before(d.Add(day)) {
			parts = append(parts, signedPart{part{time.Hour, b, d.Add(day)}, -1})
		}
	}
	if !since.IsZero() {
		if d := since.Truncate(day); !d.Add(day).Before(until) { // one day
			region(since, until, d)
			return parts
		}
	}
	ds, de := since, until.Truncate(day) // the whole days inside
	if !since.IsZero() {
		if ds = since.Truncate(day); ds.Before(since) {
			region(since, ds.Add(day), ds)
			ds = ds.Add(day)
		}
	}
	if ds.IsZero() || ds.Before(de) {
		parts = append(parts, signedPart{part{day, ds, de}, 1})
	}
	if de.Before(until) {
		region(de, until, de)
	}
	return parts
}
