package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/parityhq/parity/pkg/report"
	"github.com/parityhq/parity/pkg/segment"
)

// maxApplyTime bounds an Apply, whatever its context allows: the
// sealed-hour cache (sealedCache) relies on no Apply transaction staying
// open for an hour.
const maxApplyTime = 10 * time.Minute

// Apply writes b in one transaction: it registers b's experiments, admits new
// segments under the segment cap (folding the rest into [OtherSegment]), adds
// b's counts, signature counts and variant counts to the stored ones, merges
// b's latency histograms into the stored ones, records each new signature's
// pattern set, inserts b's samples and trims each touched (experiment,
// operation, segment) to the newest [Options.SamplesPerKey], inserts b's dead
// letters (Data cut to [MaxDeadLetterBytes]) and records b.Seqs under
// b.Stream. Either all of it is written or none of it.
//
// Latencies fold into [OtherSegment] like counts, and those that then share
// an (experiment, operation, segment, hour) are merged with
// [report.Histogram.Merge] before they are written; the stored histograms
// equal the merge of every histogram applied, exactly. A [Latency] whose
// histograms are both empty is ignored; one that [report.DecodeHistogram]
// refuses fails the whole batch with an error wrapping
// [report.ErrInvalidHistogram], and nothing is written. A batch holding only
// latencies (or variants) for an experiment registers it with the hour (or
// minute) as its first and last seen, and never moves the times of an
// experiment registered before: an experiment's first and last seen are its
// pairs' times ([Count.FirstSeen], [Count.LastSeen], sample times).
//
// A/A counts ([report.Counters.AAPairs], [report.Counters.AADivergent]) are stored beside the
// others but never added to an experiment's totals ([Experiment.Pairs],
// [Experiment.Divergent]); a Count holding only A/A pairs is stored all the
// same.
//
// When an earlier batch already recorded some of b.Seqs under b.Stream, Apply
// writes nothing. If it recorded all of them, every message of b is counted
// already (b itself committed but the reply was lost, and this is a retry;
// or another worker counted them first), and Apply returns an error wrapping
// [ErrAllApplied]: the messages may be acknowledged. If it recorded only
// some, Apply returns an error wrapping [ErrAlreadyApplied]: retrying b
// cannot succeed; ask [Store.Applied] which messages to drop and build a new
// batch from the rest.
//
// Apply does not modify b. Counts, signature counts, latencies, variant counts
// and samples may repeat a key; Apply sums them, also after folding. New
// segments are admitted in the order they first appear in b.Counts, then
// b.Samples, then b.Signatures, then b.Latencies.
//
// A [SignatureCount.Patterns] that is not a JSON array of {"pattern","kind"}
// objects is treated as absent. The first pattern set seen for a signature is
// kept; one that arrives absent is filled in by a later batch.
func (s *Store) Apply(ctx context.Context, b *Batch) error {
	if b == nil {
		return nil
	}
	p, err := prepare(b)
	if err != nil {
		return err
	}
	if p.empty() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, maxApplyTime)
	defer cancel()
	var (
		admittedExps      []string
		admittedOps       [][2]string
		expPairs, opPairs uint64
	)
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := p
		if len(p.exps) > 0 {
			fold, exps, ops, err := s.admitNames(ctx, tx, p)
			if err != nil {
				return err
			}
			admittedExps, admittedOps = exps, ops
			if !fold.empty() {
				var rb *Batch
				rb, expPairs, opPairs = renamed(b, fold)
				if q, err = prepare(rb); err != nil {
					return err
				}
			}
		}
		return q.write(ctx, tx, s.opts)
	})
	if err == nil {
		s.names.add(admittedExps, admittedOps)
		s.names.expPairs.Add(expPairs)
		s.names.opPairs.Add(opPairs)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23P01" && pgErr.ConstraintName == "applied_batches_no_overlap" {
		return s.alreadyApplied(ctx, b, err)
	}
	if err != nil {
		return fmt.Errorf("store: apply: %w", err)
	}
	return nil
}

// claimLockSpace is the first key of the two-key advisory lock Apply takes
// per stream (the second is hashtext(stream)) before it claims the batch's
// sequences, so that claims on one stream never wait on each other inside the
// exclusion constraint. There, three or more concurrent overlapping claims
// deadlock: each inserts its claim and then waits for the others'. Under the
// lock a claim only meets committed claims and fails at once.
const claimLockSpace = 0x73657173 // "seqs"

// alreadyApplied explains a batch refused because an earlier batch recorded
// some of its sequences. The earlier batch has committed (the exclusion
// constraint waits for it), so Applied sees it. When every sequence is
// already recorded, every message of b was counted already (b itself
// committed and only the reply was lost, or another worker was first):
// writing nothing is the correct outcome, and Apply says so with
// [ErrAllApplied], so the caller does not count b's pairs as its own.
func (s *Store) alreadyApplied(ctx context.Context, b *Batch, cause error) error {
	done, err := s.Applied(ctx, b.Stream, b.Seqs)
	if err != nil { // undecided: a retry will decide
		return fmt.Errorf("store: apply: batch overlaps an applied one, and checking how: %w (after %w)", err, cause)
	}
	n := 0
	for _, q := range b.Seqs {
		if !done[q] {
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("%w: all %d (stream %q)", ErrAllApplied, len(b.Seqs), b.Stream)
	}
	return fmt.Errorf("%w: %d of the batch's %d (stream %q); drop those messages and apply the rest: %w",
		ErrAlreadyApplied, len(b.Seqs)-n, len(b.Seqs), b.Stream, cause)
}

// prepared is a batch cleaned and summarised in Go, before segment folding,
// which needs the database.
type prepared struct {
	exps     []expAgg                  // sorted by name
	segOrder map[string][]segCandidate // per experiment, in order of first appearance
	counts   []Count                   // cleaned; segments not yet folded
	samples  []Sample                  // cleaned; segments not yet folded
	sigs     []SignatureCount          // cleaned; segments not yet folded; Patterns nil or a clean array
	lats     []latencyIn               // cleaned and decoded; segments not yet folded
	variants []VariantCount            // cleaned
	dead     []DeadLetter              // cleaned and cut
	stream   string
	seqLo    []int64 // runs of consecutive sequences, inclusive bounds
	seqHi    []int64
}

// latencyIn is a cleaned [Latency] with its histograms decoded.
type latencyIn struct {
	experiment, operation, segment string
	hour                           time.Time
	control, candidate             report.Histogram
}

type expAgg struct {
	name        string
	first, last time.Time
	// timed says first and last are pair times. An experiment only
	// registered by latencies or variants (an hour or a minute, no pair time)
	// is created with them but never moves a stored experiment's times.
	timed            bool
	stage            string
	stageAt          time.Time // LastSeen of the count that set stage
	sampleStageAt    time.Time // Time of the sample that set stage, if no count did
	pairs, divergent int64
	// earliest is the start of the earliest minute or hour the batch
	// writes a count, latency, variant or signature of the experiment into
	// (zero: none): Apply moves the experiment's sealed_version when it
	// lies before the database's current hour.
	earliest time.Time
}

// touch records that the batch writes into the minute or hour at.
func (e *expAgg) touch(at time.Time) {
	if e.earliest.IsZero() || at.Before(e.earliest) {
		e.earliest = at
	}
}

type segCandidate struct {
	segment string
	attrs   string // JSON object
	first   time.Time
}

func (p *prepared) empty() bool {
	return len(p.exps) == 0 && len(p.dead) == 0 && len(p.seqLo) == 0
}

// prepare cleans b's strings, normalises its times and summarises it per
// experiment. It copies what it changes; b is left alone.
func prepare(b *Batch) (*prepared, error) {
	p := &prepared{segOrder: map[string][]segCandidate{}, stream: cleanText(b.Stream)}
	exps := map[string]*expAgg{}
	seen := map[[2]string]int{} // (experiment, segment) → index in segOrder[experiment]
	exp := func(name string, at time.Time) *expAgg {
		e := exps[name]
		if e == nil {
			e = &expAgg{name: name, first: at, last: at, timed: true}
			exps[name] = e
		}
		if at.Before(e.first) {
			e.first = at
		}
		if at.After(e.last) {
			e.last = at
		}
		return e
	}
	candidate := func(experiment, segment, attrs string, at time.Time) {
		k := [2]string{experiment, segment}
		if i, ok := seen[k]; ok {
			c := &p.segOrder[experiment][i]
			if at.Before(c.first) {
				c.first = at
			}
			if c.attrs == "{}" {
				c.attrs = attrs
			}
			return
		}
		seen[k] = len(p.segOrder[experiment])
		p.segOrder[experiment] = append(p.segOrder[experiment], segCandidate{segment: segment, attrs: attrs, first: at})
	}

	p.counts = make([]Count, 0, len(b.Counts))
	for _, c := range b.Counts {
		c.Experiment = cleanText(c.Experiment)
		c.Operation = cleanText(c.Operation)
		c.Segment = cleanText(c.Segment)
		c.LastStage = cleanText(c.LastStage)
		c.Minute = c.Minute.Truncate(time.Minute).UTC()
		if c.LastSeen.IsZero() {
			c.LastSeen = c.Minute
		}
		c.LastSeen = c.LastSeen.UTC()
		if c.FirstSeen.IsZero() {
			c.FirstSeen = c.Minute
		}
		if c.FirstSeen.After(c.LastSeen) {
			c.FirstSeen = c.LastSeen
		}
		c.FirstSeen = c.FirstSeen.UTC()
		e := exp(c.Experiment, c.FirstSeen)
		e.touch(c.Minute)
		if c.LastSeen.After(e.last) {
			e.last = c.LastSeen
		}
		e.pairs += c.Pairs
		e.divergent += c.Divergent
		if c.LastStage != "" && !c.LastSeen.Before(e.stageAt) {
			e.stage, e.stageAt = c.LastStage, c.LastSeen
		}
		candidate(c.Experiment, c.Segment, cleanAttrs(c.Attrs), c.FirstSeen)
		c.Attrs = nil
		p.counts = append(p.counts, c)
	}

	p.samples = make([]Sample, 0, len(b.Samples))
	now := time.Now().UTC()
	for _, sm := range b.Samples {
		sm.PairID = cleanText(sm.PairID)
		sm.Experiment = cleanText(sm.Experiment)
		sm.Operation = cleanText(sm.Operation)
		sm.Segment = cleanText(sm.Segment)
		sm.Kind = cleanText(sm.Kind)
		sm.Stage = cleanText(sm.Stage)
		sm.UserKey = cleanText(sm.UserKey)
		sm.Verdict = cleanText(sm.Verdict)
		sm.Signature = cleanText(sm.Signature)
		if sm.Time.IsZero() {
			sm.Time = now
		}
		sm.Time = sm.Time.UTC()
		if len(sm.Paths) > 0 {
			paths := make([]string, len(sm.Paths))
			for i, path := range sm.Paths {
				paths[i] = cleanText(path)
			}
			sm.Paths = paths
		}
		e := exp(sm.Experiment, sm.Time)
		// Counts, when present, decide the stage; otherwise the newest sample.
		if e.stageAt.IsZero() && sm.Stage != "" && !sm.Time.Before(e.sampleStageAt) {
			e.stage, e.sampleStageAt = sm.Stage, sm.Time
		}
		candidate(sm.Experiment, sm.Segment, "{}", sm.Time)
		p.samples = append(p.samples, sm)
	}

	p.sigs = make([]SignatureCount, 0, len(b.Signatures))
	for _, sc := range b.Signatures {
		sc.Experiment = cleanText(sc.Experiment)
		sc.Operation = cleanText(sc.Operation)
		sc.Segment = cleanText(sc.Segment)
		sc.Signature = cleanText(sc.Signature)
		sc.Minute = sc.Minute.Truncate(time.Minute).UTC()
		if sc.FirstSeen.IsZero() {
			sc.FirstSeen = sc.Minute
		}
		if sc.LastSeen.IsZero() {
			sc.LastSeen = sc.FirstSeen
		}
		sc.FirstSeen, sc.LastSeen = sc.FirstSeen.UTC(), sc.LastSeen.UTC()
		if sc.LastSeen.Before(sc.FirstSeen) {
			sc.FirstSeen, sc.LastSeen = sc.LastSeen, sc.FirstSeen
		}
		sc.Patterns = cleanPatterns(sc.Patterns)
		e := exp(sc.Experiment, sc.FirstSeen)
		e.touch(sc.Minute)
		if sc.LastSeen.After(e.last) {
			e.last = sc.LastSeen
		}
		candidate(sc.Experiment, sc.Segment, "{}", sc.FirstSeen)
		p.sigs = append(p.sigs, sc)
	}

	p.lats = make([]latencyIn, 0, len(b.Latencies))
	for i, l := range b.Latencies {
		li, err := decodeLatency(l)
		if err != nil {
			return nil, fmt.Errorf("store: apply: latency %d (%q, %q, %q, %v): %w",
				i, l.Experiment, l.Operation, l.Segment, l.Hour, err)
		}
		if li.control.Count() == 0 && li.candidate.Count() == 0 {
			continue
		}
		if exps[li.experiment] == nil {
			exps[li.experiment] = &expAgg{name: li.experiment, first: li.hour, last: li.hour}
		}
		exps[li.experiment].touch(li.hour)
		candidate(li.experiment, li.segment, "{}", li.hour)
		p.lats = append(p.lats, li)
	}

	p.variants = make([]VariantCount, 0, len(b.Variants))
	for _, v := range b.Variants {
		v.Experiment = cleanText(v.Experiment)
		v.Operation = cleanText(v.Operation)
		v.Variant = cleanText(v.Variant)
		v.Reason = cleanText(v.Reason)
		v.Minute = v.Minute.Truncate(time.Minute).UTC()
		if exps[v.Experiment] == nil {
			exps[v.Experiment] = &expAgg{name: v.Experiment, first: v.Minute, last: v.Minute}
		}
		exps[v.Experiment].touch(v.Minute)
		p.variants = append(p.variants, v)
	}

	p.dead = make([]DeadLetter, 0, len(b.DeadLetters))
	for _, d := range b.DeadLetters {
		d.Source = cleanText(d.Source)
		d.Subject = cleanText(d.Subject)
		d.Reason = cleanText(d.Reason)
		d.Size = max(d.Size, len(d.Data))
		if len(d.Data) > MaxDeadLetterBytes {
			d.Data = d.Data[:MaxDeadLetterBytes]
		}
		if d.Data == nil {
			d.Data = []byte{}
		}
		if d.At.IsZero() {
			d.At = now
		}
		d.At = d.At.UTC()
		p.dead = append(p.dead, d)
	}

	var err error
	if p.seqLo, p.seqHi, err = seqRuns(b.Seqs); err != nil {
		return nil, err
	}

	p.exps = make([]expAgg, 0, len(exps))
	for _, e := range exps {
		p.exps = append(p.exps, *e)
	}
	slices.SortFunc(p.exps, func(a, b expAgg) int { return cmp.Compare(a.name, b.name) })
	return p, nil
}

// decodeLatency cleans l's strings, truncates its hour and decodes its
// histograms.
func decodeLatency(l Latency) (latencyIn, error) {
	control, err := report.DecodeHistogram(l.Control)
	if err != nil {
		return latencyIn{}, fmt.Errorf("control: %w", err)
	}
	candidate, err := report.DecodeHistogram(l.Candidate)
	if err != nil {
		return latencyIn{}, fmt.Errorf("candidate: %w", err)
	}
	return latencyIn{
		experiment: cleanText(l.Experiment), operation: cleanText(l.Operation), segment: cleanText(l.Segment),
		hour: l.Hour.Truncate(time.Hour).UTC(), control: control, candidate: candidate,
	}, nil
}

// maxSeq is the largest stream sequence the store can record: int8range
// stores [s, s+1), which must not overflow.
const maxSeq = math.MaxInt64 - 1

// seqRuns sorts and deduplicates seqs and returns them as runs of
// consecutive sequences, lo[i] through hi[i] inclusive.
func seqRuns(seqs []uint64) (lo, hi []int64, err error) {
	if len(seqs) == 0 {
		return nil, nil, nil
	}
	sorted := slices.Clone(seqs)
	slices.Sort(sorted)
	if last := sorted[len(sorted)-1]; last > maxSeq {
		return nil, nil, fmt.Errorf("store: apply: stream sequence %d out of range", last)
	}
	for _, s := range sorted {
		n := len(hi)
		switch {
		case n > 0 && int64(s) <= hi[n-1]: // duplicate
		case n > 0 && int64(s) == hi[n-1]+1:
			hi[n-1]++
		default:
			lo = append(lo, int64(s))
			hi = append(hi, int64(s))
		}
	}
	return lo, hi, nil
}

// SQL for Apply. Every statement takes whole columns as arrays, so each is one
// statement per batch however many rows it writes.
const (
	sqlInsertApplied = `
INSERT INTO applied_batches (stream, seqs)
SELECT $1, range_agg(int8range(lo, hi, '[]')) FROM unnest($2::int8[], $3::int8[]) AS t(lo, hi)`

	// The upsert locks every experiment row it touches until commit (ON
	// CONFLICT DO UPDATE locks like SELECT ... FOR NO KEY UPDATE, and a row
	// being inserted blocks concurrent inserters of the same name), so
	// segment admission below is serialised per experiment. Rows are taken in
	// name order, so two batches never deadlock on them.
	//
	// $7 says which rows carry pair times; the others (registered only by
	// latencies or variants) create an experiment but never move its times.
	// $8 is the earliest minute or hour the batch writes into per experiment
	// (NULL: none): one before the database's current hour moves
	// sealed_version (see migration 012 and sealedCache).
	sqlUpsertExperiments = `
WITH t AS (
	SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::text[], $5::int8[], $6::int8[], $7::bool[],
		$8::timestamptz[])
		AS t(name, first_seen, last_seen, last_stage, pairs, divergent, timed, earliest))
INSERT INTO experiments AS e (name, first_seen, last_seen, last_stage, pairs, divergent)
SELECT name, first_seen, last_seen, last_stage, pairs, divergent FROM t
ORDER BY 1
ON CONFLICT (name) DO UPDATE SET
	first_seen = CASE WHEN (SELECT timed FROM t WHERE t.name = EXCLUDED.name)
	                  THEN least(e.first_seen, EXCLUDED.first_seen) ELSE e.first_seen END,
	last_seen  = CASE WHEN (SELECT timed FROM t WHERE t.name = EXCLUDED.name)
	                  THEN greatest(e.last_seen, EXCLUDED.last_seen) ELSE e.last_seen END,
	last_stage = CASE WHEN EXCLUDED.last_stage <> '' AND EXCLUDED.last_seen >= e.last_seen
	                  THEN EXCLUDED.last_stage ELSE e.last_stage END,
	pairs      = e.pairs + EXCLUDED.pairs,
	divergent  = e.divergent + EXCLUDED.divergent,
	version    = nextval('experiment_versions'),
	sealed_version = CASE WHEN (SELECT earliest FROM t WHERE t.name = EXCLUDED.name) < date_bin('1 hour', now(), ` + rollupOrigin + `)
	                      THEN nextval('experiment_versions') ELSE e.sealed_version END`

	sqlSelectSegments = `SELECT experiment, segment FROM segments WHERE experiment = ANY($1::text[])`

	sqlInsertSegments = `
INSERT INTO segments (experiment, segment, attrs, first_seen)
SELECT e, s, a::jsonb, f FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS t(e, s, a, f)
ON CONFLICT DO NOTHING`

	// A signature's patterns are written once; only a stored empty set is
	// replaced. The WHERE skips updates that would change nothing, and the
	// NOT EXISTS does not even try them (ON CONFLICT DO UPDATE locks the row,
	// a WAL record, before it reads the WHERE). Skipping a row the snapshot
	// shows needs no change is safe: a concurrent write only widens the
	// stored times or fills the patterns.
	sqlUpsertSignatures = `
INSERT INTO signatures AS s (experiment, signature, patterns, first_seen, last_seen)
SELECT e, g, p::jsonb, f, l FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[])
	AS t(e, g, p, f, l)
WHERE NOT EXISTS (SELECT 1 FROM signatures s WHERE s.experiment = t.e AND s.signature = t.g
	AND t.f >= s.first_seen AND t.l <= s.last_seen AND NOT (s.patterns = '[]' AND t.p::jsonb <> '[]'))
ON CONFLICT (experiment, signature) DO UPDATE SET
	patterns   = CASE WHEN s.patterns = '[]' THEN EXCLUDED.patterns ELSE s.patterns END,
	first_seen = least(s.first_seen, EXCLUDED.first_seen),
	last_seen  = greatest(s.last_seen, EXCLUDED.last_seen)
WHERE EXCLUDED.first_seen < s.first_seen OR EXCLUDED.last_seen > s.last_seen
	OR (s.patterns = '[]' AND EXCLUDED.patterns <> '[]')`

	// paths travel as one JSON array per sample: unnest cannot take a ragged
	// two-dimensional array.
	sqlInsertSamples = `
INSERT INTO samples (pair_id, experiment, operation, segment, kind, stage, user_key, at, control, candidate, paths,
	verdict, signature, rules_version, diffs)
SELECT p, e, o, s, k, st, u, at, c::jsonb, d::jsonb,
	ARRAY(SELECT x FROM jsonb_array_elements_text(ps::jsonb) WITH ORDINALITY AS j(x, n) ORDER BY n),
	v, g, rv, df::jsonb
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
	$8::timestamptz[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::int8[], $15::text[])
	WITH ORDINALITY AS t(p, e, o, s, k, st, u, at, c, d, ps, v, g, rv, df, n)
ORDER BY n`

	sqlTrimSamples = `
DELETE FROM samples WHERE id IN (
	SELECT x.id FROM unnest($1::text[], $2::text[], $3::text[]) AS k(e, o, s)
	CROSS JOIN LATERAL (
		SELECT id FROM samples
		WHERE experiment = k.e AND operation = k.o AND segment = k.s
		ORDER BY at DESC, id DESC OFFSET $4
	) x)`

	sqlInsertDeadLetters = `
INSERT INTO dead_letters (source, subject, reason, data, size, at)
SELECT s, j, r, d, z, a FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::int8[], $6::timestamptz[])
	WITH ORDINALITY AS t(s, j, r, d, z, a, n)
ORDER BY n`
)

// addCounters sets each counter column of the conflicting row (aliased
// alias) to the stored value plus the incoming one.
func addCounters(alias string) string {
	return counterList(func(c string) string { return c + " = " + alias + "." + c + " + EXCLUDED." + c })
}

// int8Params returns n array parameters $from, $from+1, … cast to int8[].
func int8Params(from, n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf("$%d::int8[]", from+i)
	}
	return strings.Join(parts, ", ")
}

var (
	// The signature counts go to their minutes and, before the experiment's
	// rolled_to (late pairs), to the hours and days that roll them up, in
	// one statement (see addTo).
	sqlUpsertSignatureCounts = `
WITH u AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[],
		$6::int8[], $7::timestamptz[], $8::timestamptz[]) AS u(experiment, operation, segment, minute, signature, count, first_seen, last_seen)
), ` + addTo("m", "signature_counts", sigCountSet, `SELECT * FROM u`, sigKeys("minute"), "count, first_seen, last_seen") + `,
` + addTo("h", "signature_hours", sigCountSet, `
	SELECT experiment, operation, segment, date_bin('1 hour', minute, `+rollupOrigin+`) AS hour, signature,
		sum(count)::int8 AS count, min(first_seen) AS first_seen, max(last_seen) AS last_seen
	FROM u WHERE minute < `+rolledTo+` GROUP BY 1, 2, 3, 4, 5`, sigKeys("hour"), "count, first_seen, last_seen") + `,
` + addTo("d", "signature_days", sigCountSet, `
	SELECT experiment, operation, segment, date_bin('1 day', minute, `+rollupOrigin+`) AS day, signature,
		sum(count)::int8 AS count, min(first_seen) AS first_seen, max(last_seen) AS last_seen
	FROM u WHERE minute < `+rolledTo+` GROUP BY 1, 2, 3, 4, 5`, sigKeys("day"), "count, first_seen, last_seen") + `
SELECT 1 WHERE false`

	// The variant counts go to their minutes and, before the experiment's
	// rolled_to (late pairs), to the hours and days that roll them up, in
	// one statement (see addTo).
	sqlUpsertVariants = `
WITH u AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::int8[], $7::int8[])
		AS u(experiment, operation, variant, reason, minute, pairs, divergent)
), ` + addTo("m", "variant_counts", variantSet, `SELECT * FROM u`, []string{"experiment", "operation", "variant", "reason", "minute"}, "pairs, divergent") + `,
` + addTo("h", "variant_hours", variantSet, `
	SELECT experiment, operation, variant, reason, date_bin('1 hour', minute, `+rollupOrigin+`) AS hour,
		sum(pairs)::int8 AS pairs, sum(divergent)::int8 AS divergent
	FROM u WHERE minute < `+rolledTo+` GROUP BY 1, 2, 3, 4, 5`, []string{"experiment", "operation", "variant", "reason", "hour"}, "pairs, divergent") + `,
` + addTo("d", "variant_days", variantSet, `
	SELECT experiment, operation, variant, reason, date_bin('1 day', minute, `+rollupOrigin+`) AS day,
		sum(pairs)::int8 AS pairs, sum(divergent)::int8 AS divergent
	FROM u WHERE minute < `+rolledTo+` GROUP BY 1, 2, 3, 4, 5`, []string{"experiment", "operation", "variant", "reason", "day"}, "pairs, divergent") + `
SELECT 1 WHERE false`

	// sqlUpsertCounts takes experiments, operations, segments, minutes and
	// last-seen times ($1–$5), then one array per counter in
	// [report.Counters.Fields] order. One statement adds them to the minutes
	// (pair_counts) and to their rollups: the hours of count_hours and the
	// experiment's hours (experiment_hours), each summed in SQL from the same
	// rows, and, for a minute before the experiment's rolled_to (a late
	// pair, after the compactor summed its day), the day of count_days.
	// rolled_to is read under the experiment's row lock, which the compactor
	// takes too. See addTo for how each table is written.
	sqlUpsertCounts = `
WITH u AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], ` + int8Params(6, report.NumCounters) + `)
		AS u(experiment, operation, segment, minute, last_seen, ` + countersCols + `)
), ` + addTo("m", "pair_counts", countSet, `SELECT * FROM u`, segKeys("minute"), "last_seen, "+countersCols) + `,
` + addTo("h", "count_hours", countSet, `
	SELECT experiment, operation, segment, date_bin('1 hour', minute, `+rollupOrigin+`) AS hour, max(last_seen) AS last_seen, `+sumCountersNamed+`
	FROM u GROUP BY 1, 2, 3, 4`, segKeys("hour"), "last_seen, "+countersCols) + `,
` + addTo("d", "count_days", countSet, `
	SELECT experiment, operation, segment, date_bin('1 day', minute, `+rollupOrigin+`) AS day, max(last_seen) AS last_seen, `+sumCountersNamed+`
	FROM u WHERE minute < `+rolledTo+` GROUP BY 1, 2, 3, 4`, segKeys("day"), "last_seen, "+countersCols) + `,
` + addTo("x", "experiment_hours", "pairs = t.pairs + EXCLUDED.pairs, divergent = t.divergent + EXCLUDED.divergent", `
	SELECT experiment, date_bin('1 hour', minute, `+rollupOrigin+`) AS hour, sum(pairs)::int8 AS pairs, sum(divergent)::int8 AS divergent
	FROM u GROUP BY 1, 2`, []string{"experiment", "hour"}, "pairs, divergent") + `
SELECT 1 WHERE false`

	// sqlUpsertLatencies writes one row per (experiment, operation, segment,
	// hour or day) of %[1]s, the table, whose time column is %[2]s: its
	// latency histograms. It takes experiments, operations, segments and
	// times ($1–$4), the histograms' flat array and its subscripts ($5–$9).
	// unnest cannot take ragged arrays, so the histograms travel as one flat
	// array ($5) with each row's [lo, hi] subscripts into it; an empty
	// histogram has hi < lo and slices to '{}', and leaves the stored one as
	// it is without a call to parity_hist_add. %[3]s is a condition on the
	// rows (the days are written only before the experiment's rolled_to:
	// late latencies, after the compactor summed their day).
	sqlUpsertLatencies = `
WITH u AS (
	SELECT e AS experiment, o AS operation, s AS segment, t AS %[2]s, ($5::int8[])[cl:ch] AS control, ($5::int8[])[dl:dh] AS candidate
	FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $6::int4[], $7::int4[], $8::int4[], $9::int4[])
		AS u(e, o, s, t, cl, ch, dl, dh)
	WHERE %[3]s
), %[4]s
SELECT 1 WHERE false`
)

// latencySet adds incoming histograms (EXCLUDED) to the stored ones (t).
const latencySet = `
	control   = CASE WHEN cardinality(EXCLUDED.control) = 0 THEN t.control
	                 ELSE parity_hist_add(t.control, EXCLUDED.control) END,
	candidate = CASE WHEN cardinality(EXCLUDED.candidate) = 0 THEN t.candidate
	                 ELSE parity_hist_add(t.candidate, EXCLUDED.candidate) END`

// sigCountSet and variantSet add incoming signature counts and variant
// counts (EXCLUDED) to the stored ones (t).
const (
	sigCountSet = `count = t.count + EXCLUDED.count, first_seen = least(t.first_seen, EXCLUDED.first_seen),
		last_seen = greatest(t.last_seen, EXCLUDED.last_seen)`
	variantSet = `pairs = t.pairs + EXCLUDED.pairs, divergent = t.divergent + EXCLUDED.divergent`
)

var (
	// countSet adds incoming counters (EXCLUDED) to the stored ones (t).
	countSet = addCounters("t") + ", last_seen = greatest(t.last_seen, EXCLUDED.last_seen)"
	// sumCountersPlain sums each counter column, unnamed.
	sumCountersPlain = counterList(func(c string) string { return "sum(" + c + ")" })
	// sumCountersNamed sums each counter column under its own name.
	sumCountersNamed = counterList(func(c string) string { return "sum(" + c + ")::int8 AS " + c })
)

// segKeys and sigKeys are the keys of the count and signature count tables
// whose time column is col.
func segKeys(col string) []string { return []string{"experiment", "operation", "segment", col} }
func sigKeys(col string) []string {
	return []string{"experiment", "operation", "segment", col, "signature"}
}

// addTo returns three common table expressions that add the rows of src to
// table: name_in, src's rows (its columns named as table's: the key columns
// keys first, then the columns values lists, unique by key); name_upd, an UPDATE of the stored
// rows with those keys by set (t the stored row, EXCLUDED the incoming one);
// and name, an INSERT of the rest, in key order, whose ON CONFLICT DO UPDATE
// (by the same set) adds the rows another transaction inserted since this
// statement's snapshot.
//
// An UPDATE writes one WAL record per row; ON CONFLICT DO UPDATE writes two
// (it locks the row, then updates it), which for a flush of B6's shape was a
// fifth of its WAL. The counts stay exact under concurrency: the UPDATE
// waits for a concurrent writer of a row and adds to its version; a key the
// UPDATE did not find (absent from the snapshot, or deleted meanwhile) goes
// to the INSERT, which either inserts it or meets the concurrent insert and
// adds to it. No key goes both ways: the INSERT skips the keys the UPDATE
// returned. The UPDATE locks rows in no particular order, unlike the
// INSERT: two writers of the same rows are kept apart by the experiment's
// row lock, which Apply and the compactor take first (every key here starts
// with the experiment).
func addTo(name, table, set, src string, keys []string, values string) string {
	var match, same, ret, order []string
	for i, k := range keys {
		match = append(match, "t."+k+" = EXCLUDED."+k)
		same = append(same, "x."+k+" = i."+k)
		ret = append(ret, "t."+k)
		order = append(order, fmt.Sprint(i+1))
	}
	return fmt.Sprintf(`%[1]s_in AS MATERIALIZED (%[3]s
), %[1]s_upd AS (
	UPDATE %[2]s AS t SET %[4]s
	FROM %[1]s_in AS EXCLUDED WHERE %[5]s
	RETURNING %[6]s
), %[1]s AS (
	INSERT INTO %[2]s AS t (%[9]s, %[10]s)
	SELECT * FROM %[1]s_in AS i WHERE NOT EXISTS (SELECT 1 FROM %[1]s_upd x WHERE %[7]s)
	ORDER BY %[8]s
	ON CONFLICT (%[9]s) DO UPDATE SET %[4]s
)`, name, table, src, set, strings.Join(match, " AND "), strings.Join(ret, ", "),
		strings.Join(same, " AND "), strings.Join(order, ", "), strings.Join(keys, ", "), values)
}

// rolledTo is the rolled_to of the experiment of the row u of an upsert:
// before it, the compactor has written the days (and the variant and
// signature hours), so Apply adds to them too.
const rolledTo = `coalesce((SELECT rolled_to FROM experiments WHERE name = u.experiment), '-infinity')`

// rollupOrigin is the origin of the rollups' hours and days: a UTC
// midnight, so date_bin cuts UTC hours and days whatever the session's time
// zone.
const rollupOrigin = `'2000-01-01 00:00:00+00'::timestamptz`

// write runs in the transaction: two pipelined round trips around the segment
// decision made in Go.
func (p *prepared) write(ctx context.Context, tx pgx.Tx, opts Options) error {
	// Round trip 1: claim the sequences (first, so a racing duplicate fails
	// before taking any experiment lock) under the stream's lock, which is
	// held to commit, lock the experiments, read their admitted segments.
	admitted := map[string]map[string]struct{}{}
	caps := map[string]int{}
	b1 := &pgx.Batch{}
	if len(p.seqLo) > 0 {
		b1.Queue(`SELECT pg_advisory_xact_lock($1, hashtext($2))`, int32(claimLockSpace), p.stream)
		b1.Queue(sqlInsertApplied, p.stream, p.seqLo, p.seqHi)
	}
	if len(p.exps) > 0 {
		n := len(p.exps)
		names, stages := make([]string, n), make([]string, n)
		firsts, lasts := make([]time.Time, n), make([]time.Time, n)
		pairs, divergent := make([]int64, n), make([]int64, n)
		timed := make([]bool, n)
		earliest := make([]*time.Time, n)
		for i, e := range p.exps {
			names[i], firsts[i], lasts[i], stages[i], pairs[i], divergent[i] = e.name, e.first, e.last, e.stage, e.pairs, e.divergent
			timed[i] = e.timed
			if !e.earliest.IsZero() {
				earliest[i] = &p.exps[i].earliest
			}
		}
		b1.Queue(sqlUpsertExperiments, names, firsts, lasts, stages, pairs, divergent, timed, earliest)
		b1.Queue(sqlSelectCaps, names).Query(func(rows pgx.Rows) error {
			var exp string
			var c int
			_, err := pgx.ForEachRow(rows, []any{&exp, &c}, func() error {
				caps[exp] = c
				return nil
			})
			return err
		})
		b1.Queue(sqlSelectSegments, names).Query(func(rows pgx.Rows) error {
			var exp, seg string
			_, err := pgx.ForEachRow(rows, []any{&exp, &seg}, func() error {
				if admitted[exp] == nil {
					admitted[exp] = map[string]struct{}{}
				}
				admitted[exp][seg] = struct{}{}
				return nil
			})
			return err
		})
	}
	if b1.Len() > 0 {
		if err := tx.SendBatch(ctx, b1).Close(); err != nil {
			return err
		}
	}

	// In Go: admit, fold, re-aggregate.
	b2 := &pgx.Batch{}
	fold := p.admit(admitted, caps, opts.SegmentCap, b2)
	p.queueCounts(fold, b2)
	p.queueHours(fold, b2)
	p.queueVariants(b2)
	p.queueSignatures(fold, b2)
	p.queueSamples(fold, opts.SamplesPerKey, b2)
	p.queueDeadLetters(b2)

	// Round trip 2: everything else.
	if b2.Len() == 0 {
		return nil
	}
	return tx.SendBatch(ctx, b2).Close()
}

// folded maps (experiment, segment) to the segment to write instead, for the
// segments that fold into OtherSegment.
type folded map[[2]string]string

func (f folded) segment(experiment, segment string) string {
	if to, ok := f[[2]string{experiment, segment}]; ok {
		return to
	}
	return segment
}

// admit decides, for each segment new to its experiment, whether it is
// admitted (queued for insertion into segments) or folded: under the cap of
// the experiment's segment definition (caps), or defaultCap when it has none.
func (p *prepared) admit(admitted map[string]map[string]struct{}, caps map[string]int, defaultCap int, b *pgx.Batch) folded {
	fold := folded{}
	var exps, segs, attrs []string
	var firsts []time.Time
	for _, e := range p.exps {
		adm := admitted[e.name]
		n := len(adm)
		if _, ok := adm[OtherSegment]; ok { // never stored by Apply, but never counted either
			n--
		}
		segmentCap, ok := caps[e.name]
		if !ok {
			segmentCap = defaultCap
		}
		a := segment.NewAdmission(segmentCap, n, OtherSegment, func(s string) bool { _, ok := adm[s]; return ok })
		for _, c := range p.segOrder[e.name] {
			switch ok, fresh := a.Admit(c.segment); {
			case fresh:
				exps, segs, attrs, firsts = append(exps, e.name), append(segs, c.segment), append(attrs, c.attrs), append(firsts, c.first)
			case !ok:
				fold[[2]string{e.name, c.segment}] = OtherSegment
			}
		}
	}
	if len(exps) > 0 {
		b.Queue(sqlInsertSegments, exps, segs, attrs, firsts)
	}
	return fold
}

type countKey struct {
	experiment, operation, segment string
	minute                         int64 // Unix nanoseconds
}

// queueCounts folds the counts, sums those that now share a key (an upsert
// must not touch one row twice: SQLSTATE 21000) and queues one upsert.
func (p *prepared) queueCounts(fold folded, b *pgx.Batch) {
	if len(p.counts) == 0 {
		return
	}
	index := make(map[countKey]int, len(p.counts))
	rows := make([]Count, 0, len(p.counts))
	for _, c := range p.counts {
		c.Segment = fold.segment(c.Experiment, c.Segment)
		k := countKey{c.Experiment, c.Operation, c.Segment, c.Minute.UnixNano()}
		i, ok := index[k]
		if !ok {
			index[k] = len(rows)
			rows = append(rows, c)
			continue
		}
		r := &rows[i]
		r.Counters.Add(c.Counters)
		if c.LastSeen.After(r.LastSeen) {
			r.LastSeen = c.LastSeen
		}
	}
	// Key order, so concurrent writers lock rows in the same order.
	slices.SortFunc(rows, func(a, b Count) int {
		return cmp.Or(cmp.Compare(a.Experiment, b.Experiment), cmp.Compare(a.Operation, b.Operation),
			cmp.Compare(a.Segment, b.Segment), a.Minute.Compare(b.Minute))
	})
	n := len(rows)
	exps, ops, segs := make([]string, n), make([]string, n), make([]string, n)
	minutes, lastSeen := make([]time.Time, n), make([]time.Time, n)
	counters := counterArrays(n)
	for i, r := range rows {
		exps[i], ops[i], segs[i], minutes[i], lastSeen[i] = r.Experiment, r.Operation, r.Segment, r.Minute, r.LastSeen
		for j, v := range r.Values() {
			counters[j][i] = v
		}
	}
	b.Queue(sqlUpsertCounts, withCounters(counters, exps, ops, segs, minutes, lastSeen)...)
}

// counterArrays returns one array of n values per counter, as the upserts
// take them.
func counterArrays(n int) [report.NumCounters][]int64 {
	var out [report.NumCounters][]int64
	for i := range out {
		out[i] = make([]int64, n)
	}
	return out
}

// withCounters returns args followed by the counter arrays.
func withCounters(counters [report.NumCounters][]int64, args ...any) []any {
	for _, c := range counters {
		args = append(args, c)
	}
	return args
}

// latencyRow is one row of latency_hours or latency_days as a batch adds
// to it.
type latencyRow struct {
	experiment, operation, segment string
	at                             time.Time
	control, candidate             report.Histogram
}

// queueHours folds the latencies, merges those of each (experiment,
// operation, segment, hour) and of each such day, and queues one upsert of
// the hours (latency_hours) and one of the days before the experiment's
// rolled_to (latency_days; the compactor writes the others).
func (p *prepared) queueHours(fold folded, b *pgx.Batch) {
	if len(p.lats) == 0 {
		return
	}
	for _, unit := range []struct {
		table, col, cond string
		trunc            func(time.Time) time.Time
	}{
		{"latency_hours", "hour", "true", func(t time.Time) time.Time { return t }},
		{"latency_days", "day", "u.t < coalesce((SELECT rolled_to FROM experiments WHERE name = u.e), '-infinity')",
			func(t time.Time) time.Time { return t.Truncate(24 * time.Hour) }},
	} {
		index := make(map[countKey]int, len(p.lats))
		var rows []latencyRow
		for _, l := range p.lats {
			segment := fold.segment(l.experiment, l.segment)
			at := unit.trunc(l.hour)
			k := countKey{l.experiment, l.operation, segment, at.UnixNano()}
			i, ok := index[k]
			if !ok {
				i = len(rows)
				index[k] = i
				rows = append(rows, latencyRow{experiment: l.experiment, operation: l.operation, segment: segment, at: at})
			}
			rows[i].control.Merge(l.control)
			rows[i].candidate.Merge(l.candidate)
		}
		// Key order, so concurrent writers lock rows in the same order.
		slices.SortFunc(rows, func(a, b latencyRow) int {
			return cmp.Or(cmp.Compare(a.experiment, b.experiment), cmp.Compare(a.operation, b.operation),
				cmp.Compare(a.segment, b.segment), a.at.Compare(b.at))
		})
		n := len(rows)
		exps, ops, segs := make([]string, n), make([]string, n), make([]string, n)
		ats := make([]time.Time, n)
		flat := make([]int64, 0, 64*n) // never nil: a NULL array would slice to NULL
		cl, ch, dl, dh := make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n)
		// bounds appends h's encoding to flat and returns its 1-based subscripts.
		bounds := func(h report.Histogram) (lo, hi int32) {
			lo = int32(len(flat)) + 1
			flat = append(flat, h.Encode()...)
			return lo, int32(len(flat))
		}
		for i, r := range rows {
			exps[i], ops[i], segs[i], ats[i] = r.experiment, r.operation, r.segment, r.at
			cl[i], ch[i] = bounds(r.control)
			dl[i], dh[i] = bounds(r.candidate)
		}
		upsert := fmt.Sprintf(sqlUpsertLatencies, unit.table, unit.col, unit.cond,
			addTo("l", unit.table, latencySet, `SELECT * FROM u`, segKeys(unit.col), "control, candidate"))
		b.Queue(upsert, exps, ops, segs, ats, flat, cl, ch, dl, dh)
	}
}

type variantKey struct {
	experiment, operation, variant, reason string
	minute                                 int64 // Unix nanoseconds
}

// queueVariants sums the variant counts that share a key and queues one
// upsert.
func (p *prepared) queueVariants(b *pgx.Batch) {
	if len(p.variants) == 0 {
		return
	}
	index := make(map[variantKey]int, len(p.variants))
	rows := make([]VariantCount, 0, len(p.variants))
	for _, v := range p.variants {
		k := variantKey{v.Experiment, v.Operation, v.Variant, v.Reason, v.Minute.UnixNano()}
		i, ok := index[k]
		if !ok {
			index[k] = len(rows)
			rows = append(rows, v)
			continue
		}
		rows[i].Pairs += v.Pairs
		rows[i].Divergent += v.Divergent
	}
	// Key order, so concurrent writers lock rows in the same order.
	slices.SortFunc(rows, func(a, b VariantCount) int {
		return cmp.Or(cmp.Compare(a.Experiment, b.Experiment), cmp.Compare(a.Operation, b.Operation),
			cmp.Compare(a.Variant, b.Variant), cmp.Compare(a.Reason, b.Reason), a.Minute.Compare(b.Minute))
	})
	n := len(rows)
	exps, ops, variants, reasons := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	minutes, pairs, divergent := make([]time.Time, n), make([]int64, n), make([]int64, n)
	for i, r := range rows {
		exps[i], ops[i], variants[i], reasons[i] = r.Experiment, r.Operation, r.Variant, r.Reason
		minutes[i], pairs[i], divergent[i] = r.Minute, r.Pairs, r.Divergent
	}
	b.Queue(sqlUpsertVariants, exps, ops, variants, reasons, minutes, pairs, divergent)
}

type sigCountKey struct {
	experiment, operation, segment string
	minute                         int64 // Unix nanoseconds
	signature                      string
}

// queueSignatures folds the signature counts as queueCounts folds counts,
// sums those that now share a key, and queues one upsert of the counts and
// one of the signatures themselves (pattern set, first and last seen).
func (p *prepared) queueSignatures(fold folded, b *pgx.Batch) {
	if len(p.sigs) == 0 {
		return
	}
	index := make(map[sigCountKey]int, len(p.sigs))
	rows := make([]SignatureCount, 0, len(p.sigs))
	for _, sc := range p.sigs {
		sc.Segment = fold.segment(sc.Experiment, sc.Segment)
		k := sigCountKey{sc.Experiment, sc.Operation, sc.Segment, sc.Minute.UnixNano(), sc.Signature}
		i, ok := index[k]
		if !ok {
			index[k] = len(rows)
			rows = append(rows, sc)
			continue
		}
		r := &rows[i]
		r.Count += sc.Count
		if sc.FirstSeen.Before(r.FirstSeen) {
			r.FirstSeen = sc.FirstSeen
		}
		if sc.LastSeen.After(r.LastSeen) {
			r.LastSeen = sc.LastSeen
		}
		if len(r.Patterns) == 0 {
			r.Patterns = sc.Patterns
		}
	}
	// Key order, so concurrent writers lock rows in the same order.
	slices.SortFunc(rows, func(a, b SignatureCount) int {
		return cmp.Or(cmp.Compare(a.Experiment, b.Experiment), cmp.Compare(a.Operation, b.Operation),
			cmp.Compare(a.Segment, b.Segment), a.Minute.Compare(b.Minute), cmp.Compare(a.Signature, b.Signature))
	})
	n := len(rows)
	exps, ops, segs, sigs := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	minutes, firsts, lasts := make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
	counts := make([]int64, n)
	for i, r := range rows {
		exps[i], ops[i], segs[i], minutes[i], sigs[i] = r.Experiment, r.Operation, r.Segment, r.Minute, r.Signature
		counts[i], firsts[i], lasts[i] = r.Count, r.FirstSeen, r.LastSeen
	}
	b.Queue(sqlUpsertSignatureCounts, exps, ops, segs, minutes, sigs, counts, firsts, lasts)

	// One row per (experiment, signature), in key order.
	type sig struct {
		experiment, signature string
		patterns              string
		first, last           time.Time
	}
	byKey := map[[2]string]int{}
	var all []sig
	for _, r := range rows {
		k := [2]string{r.Experiment, r.Signature}
		i, ok := byKey[k]
		if !ok {
			byKey[k] = len(all)
			all = append(all, sig{r.Experiment, r.Signature, string(r.Patterns), r.FirstSeen, r.LastSeen})
			continue
		}
		g := &all[i]
		if r.FirstSeen.Before(g.first) {
			g.first = r.FirstSeen
		}
		if r.LastSeen.After(g.last) {
			g.last = r.LastSeen
		}
		if g.patterns == "" {
			g.patterns = string(r.Patterns)
		}
	}
	slices.SortFunc(all, func(a, b sig) int {
		return cmp.Or(cmp.Compare(a.experiment, b.experiment), cmp.Compare(a.signature, b.signature))
	})
	n = len(all)
	exps, sigs = make([]string, n), make([]string, n)
	patterns := make([]string, n)
	firsts, lasts = make([]time.Time, n), make([]time.Time, n)
	for i, g := range all {
		exps[i], sigs[i], firsts[i], lasts[i] = g.experiment, g.signature, g.first, g.last
		patterns[i] = cmp.Or(g.patterns, "[]")
	}
	b.Queue(sqlUpsertSignatures, exps, sigs, patterns, firsts, lasts)
}

type sampleKey struct{ experiment, operation, segment string }

// queueSamples folds the samples, keeps the newest keep per key (older ones
// would be trimmed at once), and queues their insertion and the trim.
func (p *prepared) queueSamples(fold folded, keep int, b *pgx.Batch) {
	if len(p.samples) == 0 {
		return
	}
	groups := map[sampleKey][]Sample{}
	var keys []sampleKey
	for _, sm := range p.samples {
		sm.Segment = fold.segment(sm.Experiment, sm.Segment)
		k := sampleKey{sm.Experiment, sm.Operation, sm.Segment}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], sm)
	}
	var rows []Sample
	for _, k := range keys {
		g := groups[k]
		// Newest first; among equal times the later in the batch is newer,
		// as it would get the larger id.
		slices.Reverse(g)
		slices.SortStableFunc(g, func(a, b Sample) int { return b.Time.Compare(a.Time) })
		rows = append(rows, g[:min(len(g), keep)]...)
	}
	// Oldest first, so ids grow with time.
	slices.Reverse(rows)
	slices.SortStableFunc(rows, func(a, b Sample) int { return a.Time.Compare(b.Time) })

	n := len(rows)
	pairIDs, exps, ops, segs, kinds, stages, users := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	ats := make([]time.Time, n)
	controls, candidates := make([]*string, n), make([]*string, n)
	paths := make([]string, n)
	verdicts, signatures, diffs := make([]string, n), make([]string, n), make([]*string, n)
	rulesVersions := make([]int64, n)
	for i, r := range rows {
		pairIDs[i], exps[i], ops[i], segs[i], kinds[i], stages[i], users[i] = r.PairID, r.Experiment, r.Operation,
			r.Segment, r.Kind, r.Stage, r.UserKey
		ats[i] = r.Time
		controls[i], candidates[i] = cleanJSON(r.Control), cleanJSON(r.Candidate)
		verdicts[i], signatures[i], rulesVersions[i], diffs[i] = r.Verdict, r.Signature, r.RulesVersion, cleanJSON(r.Diffs)
		paths[i] = "[]"
		if len(r.Paths) > 0 {
			js, _ := json.Marshal(r.Paths) // cannot fail for []string
			paths[i] = string(js)
		}
	}
	b.Queue(sqlInsertSamples, pairIDs, exps, ops, segs, kinds, stages, users, ats, controls, candidates, paths,
		verdicts, signatures, rulesVersions, diffs)

	te, to, ts := make([]string, len(keys)), make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		te[i], to[i], ts[i] = k.experiment, k.operation, k.segment
	}
	b.Queue(sqlTrimSamples, te, to, ts, keep)
}

func (p *prepared) queueDeadLetters(b *pgx.Batch) {
	n := len(p.dead)
	if n == 0 {
		return
	}
	sources, subjects, reasons := make([]string, n), make([]string, n), make([]string, n)
	data, sizes, ats := make([][]byte, n), make([]int64, n), make([]time.Time, n)
	for i, d := range p.dead {
		sources[i], subjects[i], reasons[i], data[i], sizes[i], ats[i] = d.Source, d.Subject, d.Reason, d.Data, int64(d.Size), d.At
	}
	b.Queue(sqlInsertDeadLetters, sources, subjects, reasons, data, sizes, ats)
}

// Applied reports which of seqs an earlier [Store.Apply] recorded under
// stream. The map holds exactly the applied sequences, each mapped to true.
func (s *Store) Applied(ctx context.Context, stream string, seqs []uint64) (map[uint64]bool, error) {
	out := map[uint64]bool{}
	var valid []uint64
	for _, q := range seqs {
		if q <= maxSeq {
			valid = append(valid, q)
		}
	}
	lo, hi, _ := seqRuns(valid)
	if len(lo) == 0 {
		return out, nil
	}
	// Only the rows whose sequences overlap the question are read, through
	// the GiST index, and only the overlap comes back, as [lower, upper).
	rows, err := s.pool.Query(ctx, `
WITH q AS (SELECT range_agg(int8range(lo, hi, '[]')) AS m FROM unnest($2::int8[], $3::int8[]) AS t(lo, hi))
SELECT lower(r), upper(r)
FROM q, applied_batches a, LATERAL unnest(a.seqs * q.m) AS r
WHERE a.stream = $1 AND a.seqs && q.m`, cleanText(stream), lo, hi)
	if err != nil {
		return nil, fmt.Errorf("store: applied: %w", err)
	}
	var l, u int64
	_, err = pgx.ForEachRow(rows, []any{&l, &u}, func() error {
		for _, q := range valid {
			if int64(q) >= l && int64(q) < u {
				out[q] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: applied: %w", err)
	}
	return out, nil
}

// PruneApplied forgets the sequences of batches applied before olderThan and
// returns how many batches it forgot. A message redelivered after its batch
// is forgotten would be counted again, so olderThan must lie well beyond the
// longest redelivery window (the consumer's AckWait times MaxDeliver, plus
// any backoff).
func (s *Store) PruneApplied(ctx context.Context, olderThan time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM applied_batches WHERE applied_at < $1`, olderThan)
	if err != nil {
		return 0, fmt.Errorf("store: prune applied: %w", err)
	}
	return tag.RowsAffected(), nil
}
