package store

import (
	"context"
	"fmt"
	"time"
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

// PruneMinutes deletes the per-minute counts (pair_counts, and the
// per-minute variant and signature counts) that lie before the horizon at
// now (the start of the hour [Options.MinuteRetention] before now) and
// returns how many rows of pair_counts went; with minutes kept forever it
// does nothing. The hourly and daily rollups, the experiments' totals and
// the signatures themselves are kept, and every read spanning the deleted
// minutes takes them from the rollups, so totals stay exact.
//
// Work is bounded per statement: the rows go one table, one experiment and
// one hour at a time, each hour in its own short transaction, so a first
// prune of a long history neither holds locks nor builds one huge
// transaction.
func (s *Store) PruneMinutes(ctx context.Context, now time.Time) (int64, error) {
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
	var deleted int64
	for _, table := range []string{"pair_counts", "variant_counts", "signature_counts"} {
		for _, name := range names {
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
