package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// horizon returns where the kept minutes of pair_counts start at now: the
// start of the hour MinuteRetention before now, or the zero time when minutes
// are kept forever. Reads answer whatever lies before it from the hourly
// rollup ([countsFrom]), so they give the same sums before and after
// [Store.PruneMinutes] deletes those minutes.
func (s *Store) horizon(now time.Time) time.Time {
	if s.opts.MinuteRetention <= 0 {
		return time.Time{}
	}
	return now.Add(-s.opts.MinuteRetention).Truncate(time.Hour)
}

// PruneMinutes runs [Store.Compact], then deletes the per-minute counts
// (pair_counts, and the per-minute variant and signature counts, those only
// before the experiment's rolled_to, where their hours are written) that lie
// before the horizon at now (the start of the hour [Options.MinuteRetention]
// before now) and returns how many rows of pair_counts went; with minutes
// kept forever it only compacts. The hourly and daily rollups, the experiments' totals and
// the signatures themselves are kept, and every read spanning the deleted
// minutes takes them from the rollups, so totals stay exact.
//
// Work is bounded per statement: the rows go one table, one experiment and
// one hour at a time, each hour in its own short transaction, so a first
// prune of a long history neither holds locks nor builds one huge
// transaction.
func (s *Store) PruneMinutes(ctx context.Context, now time.Time) (int64, error) {
	// The variant and signature minutes have no hours until the compactor
	// writes them: compact first (with minutes kept forever too, for the
	// reads), and delete those minutes only before rolled_to.
	if _, err := s.Compact(ctx, now); err != nil {
		return 0, err
	}
	h := s.horizon(now)
	if h.IsZero() {
		return 0, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT name FROM experiments ORDER BY name`)
	if err != nil {
		return 0, fmt.Errorf("store: prune minutes: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return 0, fmt.Errorf("store: prune minutes: %w", err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("store: prune minutes: %w", err)
	}
	rolled, err := s.rolledToOf(ctx, names)
	if err != nil {
		return 0, err
	}
	var deleted int64
	for _, table := range []string{"pair_counts", "variant_counts", "signature_counts"} {
		for _, name := range names {
			h := h
			if table != "pair_counts" {
				h = lazyHorizon(h, rolled[name])
			}
			var first *time.Time
			if err := s.pool.QueryRow(ctx, `SELECT min(minute) FROM `+table+` WHERE experiment = $1`, name).Scan(&first); err != nil {
				return deleted, fmt.Errorf("store: prune minutes of %q: %w", name, err)
			}
			if first == nil {
				continue
			}
			for t := first.UTC().Truncate(time.Hour); t.Before(h); t = t.Add(time.Hour) {
				tag, err := s.pool.Exec(ctx, `DELETE FROM `+table+` WHERE experiment = $1 AND minute >= $2 AND minute < $3`,
					name, t, t.Add(time.Hour))
				if err != nil {
					return deleted, fmt.Errorf("store: prune minutes of %q: %w", name, err)
				}
				if table == "pair_counts" {
					deleted += tag.RowsAffected()
				}
			}
		}
	}
	return deleted, nil
}

// rolledToOf returns the rolled_to of each of names: before it, the
// compactor has written the experiment's days and its variant and signature
// hours ([Store.Compact]); absent when it has written none (or the
// experiment is unknown). Reads of one experiment guess it instead
// ([Store.readRolled]).
func (s *Store) rolledToOf(ctx context.Context, names []string) (map[string]time.Time, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, rolled_to FROM experiments WHERE name = ANY($1::text[]) AND rolled_to IS NOT NULL`, names)
	if err != nil {
		return nil, fmt.Errorf("store: rolled to: %w", err)
	}
	out := make(map[string]time.Time, len(names))
	var name string
	var at time.Time
	if _, err := pgx.ForEachRow(rows, []any{&name, &at}, func() error {
		out[name] = at.UTC()
		return nil
	}); err != nil {
		return nil, fmt.Errorf("store: rolled to: %w", err)
	}
	return out, nil
}

// Compact writes what Apply leaves to it: for every experiment, for each
// whole UTC day before now's day that it has not written yet, the day's
// rollups (count_days and latency_days from the hours, variant_hours,
// variant_days, signature_hours and signature_days from the minutes), and
// moves the experiment's rolled_to past the day, in one transaction per
// experiment and day that holds the experiment's row lock. Apply takes that
// lock too and adds a write to a minute or hour before rolled_to to these
// rollups itself, so every day is summed exactly once and stays exact. It
// returns the number of days written. Reads use these rollups only before
// rolled_to, so their answers are the same before and after.
func (s *Store) Compact(ctx context.Context, now time.Time) (int, error) {
	until := now.UTC().Truncate(day)
	rows, err := s.pool.Query(ctx, `SELECT name FROM experiments WHERE rolled_to IS NULL OR rolled_to < $1 ORDER BY name`, until)
	if err != nil {
		return 0, fmt.Errorf("store: compact: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("store: compact: %w", err)
	}
	days := 0
	for _, name := range names {
		for {
			done, err := s.compactDay(ctx, name, until)
			if err != nil {
				return days, fmt.Errorf("store: compact %q: %w", name, err)
			}
			if done {
				break
			}
			days++
		}
	}
	return days, nil
}

// compactDay writes the next day of experiment before until, or, when
// there is none, moves rolled_to to until and reports done.
func (s *Store) compactDay(ctx context.Context, experiment string, until time.Time) (done bool, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(ctx)
		}
	}()
	var rolled *time.Time
	if err := tx.QueryRow(ctx, `SELECT rolled_to FROM experiments WHERE name = $1 FOR UPDATE`, experiment).Scan(&rolled); err != nil {
		return false, err
	}
	var d time.Time
	if rolled != nil {
		d = rolled.UTC()
	} else {
		// Nothing written yet: from the first day with anything to roll up.
		var first *time.Time
		if err := tx.QueryRow(ctx, `SELECT least(
	(SELECT min(hour) FROM count_hours WHERE experiment = $1),
	(SELECT min(hour) FROM latency_hours WHERE experiment = $1),
	(SELECT min(minute) FROM variant_counts WHERE experiment = $1),
	(SELECT min(minute) FROM signature_counts WHERE experiment = $1))`, experiment).Scan(&first); err != nil {
			return false, err
		}
		d = until
		if first != nil && first.Before(until) {
			d = first.UTC().Truncate(day)
		}
	}
	if !d.Before(until) {
		if rolled == nil || rolled.Before(until) {
			if _, err := tx.Exec(ctx, `UPDATE experiments SET rolled_to = $2 WHERE name = $1`, experiment, until); err != nil {
				return false, err
			}
		}
		return true, tx.Commit(ctx)
	}
	b := &pgx.Batch{}
	for _, q := range sqlCompactDay {
		b.Queue(q, experiment, d, d.Add(day))
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return false, err
	}
	return false, tx.Commit(ctx)
}

// sqlCompactDay are the statements that write the day [$2, $3) of
// experiment $1 and move its rolled_to past it. The rows are new: Apply
// writes these rollups only before rolled_to.
var sqlCompactDay = []string{
	`INSERT INTO count_days (experiment, operation, segment, day, last_seen, ` + countersCols + `)
SELECT experiment, operation, segment, $2, max(last_seen), ` + sumCountersPlain + `
FROM count_hours WHERE experiment = $1 AND hour >= $2 AND hour < $3 GROUP BY 1, 2, 3`,
	`INSERT INTO latency_days (experiment, operation, segment, day, control, candidate)
SELECT experiment, operation, segment, $2, parity_hist_merge(control), parity_hist_merge(candidate)
FROM latency_hours WHERE experiment = $1 AND hour >= $2 AND hour < $3 GROUP BY 1, 2, 3`,
	`INSERT INTO variant_hours (experiment, operation, variant, reason, hour, pairs, divergent)
SELECT experiment, operation, variant, reason, date_bin('1 hour', minute, ` + rollupOrigin + `), sum(pairs), sum(divergent)
FROM variant_counts WHERE experiment = $1 AND minute >= $2 AND minute < $3 GROUP BY 1, 2, 3, 4, 5`,
	`INSERT INTO variant_days (experiment, operation, variant, reason, day, pairs, divergent)
SELECT experiment, operation, variant, reason, $2, sum(pairs), sum(divergent)
FROM variant_counts WHERE experiment = $1 AND minute >= $2 AND minute < $3 GROUP BY 1, 2, 3, 4`,
	`INSERT INTO signature_hours (experiment, operation, segment, hour, signature, count, first_seen, last_seen)
SELECT experiment, operation, segment, date_bin('1 hour', minute, ` + rollupOrigin + `), signature, sum(count), min(first_seen), max(last_seen)
FROM signature_counts WHERE experiment = $1 AND minute >= $2 AND minute < $3 GROUP BY 1, 2, 3, 4, 5`,
	`INSERT INTO signature_days (experiment, operation, segment, day, signature, count, first_seen, last_seen)
SELECT experiment, operation, segment, $2, signature, sum(count), min(first_seen), max(last_seen)
FROM signature_counts WHERE experiment = $1 AND minute >= $2 AND minute < $3 GROUP BY 1, 2, 3, 5`,
	`UPDATE experiments SET rolled_to = $3 WHERE name = $1 AND $2::timestamptz IS NOT NULL`,
}
