package store

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Redaction is an experiment's redaction rules (a []redact.Rule as JSON) and
// the key its hashes are made with.
type Redaction struct {
	Experiment string
	Rules      json.RawMessage
	Key        []byte
	Author     string
	UpdatedAt  time.Time
}

const redactionColumns = `experiment, rules, key, author, updated_at`

// SaveRedaction replaces an experiment's redaction rules. The hashing key is
// made at the first save and kept afterwards.
func (s *Store) SaveRedaction(ctx context.Context, experiment string, rules json.RawMessage, author string) (Redaction, error) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	row := s.pool.QueryRow(ctx, `
		INSERT INTO redaction (experiment, rules, key, author) VALUES ($1, $2, $3, $4)
		ON CONFLICT (experiment) DO UPDATE SET rules = EXCLUDED.rules, author = EXCLUDED.author, updated_at = now()
		RETURNING `+redactionColumns, cleanText(experiment), rules, key, cleanText(author))
	r, err := scanRedaction(row)
	if err != nil {
		return Redaction{}, fmt.Errorf("store: save redaction of %q: %w", experiment, err)
	}
	return r, nil
}

// Redaction returns an experiment's redaction, or [ErrNotFound].
func (s *Store) Redaction(ctx context.Context, experiment string) (Redaction, error) {
	r, err := scanRedaction(s.pool.QueryRow(ctx, `SELECT `+redactionColumns+` FROM redaction WHERE experiment = $1`, experiment))
	if errors.Is(err, pgx.ErrNoRows) {
		return Redaction{}, fmt.Errorf("store: redaction of %q: %w", experiment, ErrNotFound)
	}
	if err != nil {
		return Redaction{}, fmt.Errorf("store: redaction of %q: %w", experiment, err)
	}
	return r, nil
}

// AllRedactions returns every experiment's redaction.
func (s *Store) AllRedactions(ctx context.Context) ([]Redaction, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+redactionColumns+` FROM redaction ORDER BY experiment`)
	if err != nil {
		return nil, fmt.Errorf("store: redactions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Redaction, error) { return scanRedaction(row) })
	if err != nil {
		return nil, fmt.Errorf("store: redactions: %w", err)
	}
	return out, nil
}

func scanRedaction(row pgx.Row) (Redaction, error) {
	var r Redaction
	err := row.Scan(&r.Experiment, &r.Rules, &r.Key, &r.Author, &r.UpdatedAt)
	r.UpdatedAt = r.UpdatedAt.UTC()
	return r, err
}

// Prune deletes samples older than samplesBefore and dead letters older than
// deadBefore (a zero time keeps them all), and returns how many went.
// Samples go experiment by experiment, each a range of samples_experiment_at
// (there is no index on the time alone: Apply would write to it with every
// sample); every sample's experiment is in experiments.
func (s *Store) Prune(ctx context.Context, samplesBefore, deadBefore time.Time) (samples, dead int64, err error) {
	if !samplesBefore.IsZero() {
		tag, err := s.pool.Exec(ctx, `DELETE FROM samples WHERE experiment = ANY(ARRAY(SELECT name FROM experiments)) AND at < $1`, samplesBefore)
		if err != nil {
			return 0, 0, fmt.Errorf("store: prune samples: %w", err)
		}
		samples = tag.RowsAffected()
	}
	if !deadBefore.IsZero() {
		tag, err := s.pool.Exec(ctx, `DELETE FROM dead_letters WHERE at < $1`, deadBefore)
		if err != nil {
			return samples, 0, fmt.Errorf("store: prune dead letters: %w", err)
		}
		dead = tag.RowsAffected()
	}
	return samples, dead, nil
}
