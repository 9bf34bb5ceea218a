package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// MaxAnchorsPerExperiment bounds the named analyses kept per experiment;
// past it, the oldest anchors are forgotten as new ones are made.
const MaxAnchorsPerExperiment = 1000

// maxAnchors is MaxAnchorsPerExperiment, lowered by tests.
var maxAnchors = MaxAnchorsPerExperiment

// Anchor returns when the named analysis of experiment was first looked at:
// the first call for a (experiment, name) stores at truncated to the minute
// and returns it, every later call returns that same time, whatever its at.
// Concurrent first calls agree on one time. The experiment need not have
// pairs yet. Past [MaxAnchorsPerExperiment] anchors of one experiment, the
// oldest are deleted.
func (s *Store) Anchor(ctx context.Context, experiment, name string, at time.Time) (time.Time, error) {
	experiment, name = cleanText(experiment), cleanText(name)
	var t time.Time
	var inserted bool
	var err error
	// A concurrent first look may commit between this statement's snapshot
	// and its insert: then neither branch sees a row, and the next statement
	// does.
	for range 2 {
		err = s.pool.QueryRow(ctx, `
WITH ins AS (
    INSERT INTO gate_anchors (experiment, name, anchored_at) VALUES ($1, $2, $3)
    ON CONFLICT (experiment, name) DO NOTHING
    RETURNING anchored_at
)
SELECT anchored_at, true FROM ins
UNION ALL
SELECT anchored_at, false FROM gate_anchors WHERE experiment = $1 AND name = $2
LIMIT 1`, experiment, name, at.UTC().Truncate(time.Minute)).Scan(&t, &inserted)
		if !errors.Is(err, pgx.ErrNoRows) {
			break
		}
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("store: anchor %q of %q: %w", name, experiment, err)
	}
	if inserted {
		_, err = s.pool.Exec(ctx, `
DELETE FROM gate_anchors WHERE experiment = $1 AND name IN (
    SELECT name FROM gate_anchors WHERE experiment = $1
    ORDER BY anchored_at DESC, name OFFSET $2)`, experiment, maxAnchors)
		if err != nil {
			return time.Time{}, fmt.Errorf("store: anchors of %q: %w", experiment, err)
		}
	}
	return t.UTC(), nil
}
