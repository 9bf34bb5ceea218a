package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parityhq/parity/pkg/segment"
)

// SegmentConfig is one version of an experiment's segment definition.
type SegmentConfig struct {
	Experiment string
	Version    int64
	segment.Definition
	Author    string
	Reason    string
	CreatedAt time.Time
}

// segmentsLockSpace is the first key of the two-key advisory lock that saving
// a segment definition takes per experiment, as [rulesLockSpace] for rules.
const segmentsLockSpace = 0x73656773 // "segs"

const segmentConfigColumns = `experiment, version, attrs, cap, author, reason, created_at`

// SaveSegmentConfig stores def as experiment's next version of its segment
// definition and returns what it stored. Versions start at 1 and go up by
// 1, whatever the concurrency. def must be valid ([segment.Definition.Validate]);
// an invalid one fails with an error wrapping [segment.ErrInvalid].
//
// The new definition applies to pairs judged after the verifiers load it
// (at once on the collector's notice, at the latest on their periodic
// reload); segments already admitted stay, and count toward the new cap.
func (s *Store) SaveSegmentConfig(ctx context.Context, experiment string, def segment.Definition, author, reason string) (SegmentConfig, error) {
	experiment = cleanText(experiment)
	if err := def.Validate(); err != nil {
		return SegmentConfig{}, fmt.Errorf("store: save segments of %q: %w", experiment, err)
	}
	attrs, _ := json.Marshal(nonNil(def.Attrs)) // []string always marshals
	var out SegmentConfig
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`SELECT pg_advisory_xact_lock($1, hashtext($2))`, int32(segmentsLockSpace), experiment)
		b.Queue(`
INSERT INTO segment_configs (experiment, version, attrs, cap, author, reason)
SELECT $1, coalesce(max(version), 0) + 1, $2::jsonb, $3, $4, $5 FROM segment_configs WHERE experiment = $1
RETURNING `+segmentConfigColumns, experiment, string(attrs), def.Cap, cleanText(author), cleanText(reason)).QueryRow(func(row pgx.Row) error {
			var err error
			out, err = scanSegmentConfig(row)
			return err
		})
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return SegmentConfig{}, fmt.Errorf("store: save segments of %q: %w", experiment, err)
	}
	return out, nil
}

// EnsureSegmentConfig returns experiment's latest segment definition,
// storing def as its version 1 first if it has none. When several callers
// race with different definitions, exactly one is stored and all of them get
// it: this is how verifiers started with different flags still split a new
// experiment the same way.
func (s *Store) EnsureSegmentConfig(ctx context.Context, experiment string, def segment.Definition, author, reason string) (SegmentConfig, error) {
	experiment = cleanText(experiment)
	if err := def.Validate(); err != nil {
		return SegmentConfig{}, fmt.Errorf("store: segments of %q: %w", experiment, err)
	}
	attrs, _ := json.Marshal(nonNil(def.Attrs))
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO segment_configs (experiment, version, attrs, cap, author, reason)
VALUES ($1, 1, $2::jsonb, $3, $4, $5) ON CONFLICT DO NOTHING`, experiment, string(attrs), def.Cap, cleanText(author), cleanText(reason))
	var out SegmentConfig
	b.Queue(`SELECT `+segmentConfigColumns+` FROM segment_configs WHERE experiment = $1 ORDER BY version DESC LIMIT 1`,
		experiment).QueryRow(func(row pgx.Row) error {
		var err error
		out, err = scanSegmentConfig(row)
		return err
	})
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return SegmentConfig{}, fmt.Errorf("store: segments of %q: %w", experiment, err)
	}
	return out, nil
}

// AdoptSegmentConfigs stores def as version 1 of the segment definition of
// every experiment that has pairs but no definition (an experiment counted
// before definitions were stored), and returns how many it stored. It is how
// an upgrade keeps the flags in force: run with them, it records them.
func (s *Store) AdoptSegmentConfigs(ctx context.Context, def segment.Definition, author, reason string) (int64, error) {
	if err := def.Validate(); err != nil {
		return 0, fmt.Errorf("store: adopt segments: %w", err)
	}
	attrs, _ := json.Marshal(nonNil(def.Attrs))
	tag, err := s.pool.Exec(ctx, `
INSERT INTO segment_configs (experiment, version, attrs, cap, author, reason)
SELECT e.name, 1, $1::jsonb, $2, $3, $4 FROM experiments e
WHERE NOT EXISTS (SELECT 1 FROM segment_configs c WHERE c.experiment = e.name)
ON CONFLICT DO NOTHING`, string(attrs), def.Cap, cleanText(author), cleanText(reason))
	if err != nil {
		return 0, fmt.Errorf("store: adopt segments: %w", err)
	}
	return tag.RowsAffected(), nil
}

// SegmentConfig returns the latest version of experiment's segment
// definition, or an error wrapping [ErrNotFound] when it has none.
func (s *Store) SegmentConfig(ctx context.Context, experiment string) (SegmentConfig, error) {
	c, err := scanSegmentConfig(s.pool.QueryRow(ctx, `SELECT `+segmentConfigColumns+` FROM segment_configs
WHERE experiment = $1 ORDER BY version DESC LIMIT 1`, experiment))
	if errors.Is(err, pgx.ErrNoRows) {
		return SegmentConfig{}, fmt.Errorf("store: segments of %q: %w", experiment, ErrNotFound)
	}
	if err != nil {
		return SegmentConfig{}, fmt.Errorf("store: segments of %q: %w", experiment, err)
	}
	return c, nil
}

// SegmentConfigHistory returns experiment's versions of its segment
// definition, newest first: at most limit, or [DefaultLimit] when limit is 0
// or less.
func (s *Store) SegmentConfigHistory(ctx context.Context, experiment string, limit int) ([]SegmentConfig, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	rows, err := s.pool.Query(ctx, `SELECT `+segmentConfigColumns+` FROM segment_configs
WHERE experiment = $1 ORDER BY version DESC LIMIT $2`, experiment, limit)
	if err != nil {
		return nil, fmt.Errorf("store: segments history of %q: %w", experiment, err)
	}
	out, err := collectSegmentConfigs(rows)
	if err != nil {
		return nil, fmt.Errorf("store: segments history of %q: %w", experiment, err)
	}
	return out, nil
}

// AllSegmentConfigs returns the latest segment definition of every
// experiment that has one, ordered by experiment.
func (s *Store) AllSegmentConfigs(ctx context.Context) ([]SegmentConfig, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT ON (experiment) `+segmentConfigColumns+` FROM segment_configs
ORDER BY experiment, version DESC`)
	if err != nil {
		return nil, fmt.Errorf("store: all segments: %w", err)
	}
	out, err := collectSegmentConfigs(rows)
	if err != nil {
		return nil, fmt.Errorf("store: all segments: %w", err)
	}
	return out, nil
}

func collectSegmentConfigs(rows pgx.Rows) ([]SegmentConfig, error) {
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (SegmentConfig, error) { return scanSegmentConfig(row) })
	if out == nil && err == nil {
		out = []SegmentConfig{}
	}
	return out, err
}

func scanSegmentConfig(row pgx.Row) (SegmentConfig, error) {
	var c SegmentConfig
	var attrs []byte
	if err := row.Scan(&c.Experiment, &c.Version, &attrs, &c.Cap, &c.Author, &c.Reason, &c.CreatedAt); err != nil {
		return SegmentConfig{}, err
	}
	if err := json.Unmarshal(attrs, &c.Attrs); err != nil {
		return SegmentConfig{}, fmt.Errorf("attrs: %w", err)
	}
	c.Attrs = nonNil(c.Attrs)
	c.CreatedAt = c.CreatedAt.UTC()
	return c, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// sqlSelectCaps reads the segment cap of each experiment that has a
// definition.
const sqlSelectCaps = `SELECT DISTINCT ON (experiment) experiment, cap FROM segment_configs
WHERE experiment = ANY($1::text[]) ORDER BY experiment, version DESC`
