package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

const gateSpecColumns = `experiment, spec, author, updated_at`

// SaveGateSpec stores spec as experiment's promotion gate spec, replacing the
// one stored before, and returns what it stored. UpdatedAt is the database's
// time of the save. Only the latest spec is kept.
//
// spec must be a JSON object (a report.GateSpec document); the store does not
// otherwise validate it, so callers check it first (report.GateSpec.Validate).
// It is stored as jsonb: key order and spacing may change. A spec may be saved
// for an experiment that has no pairs yet.
func (s *Store) SaveGateSpec(ctx context.Context, experiment string, spec []byte, author string) (GateSpec, error) {
	experiment = cleanText(experiment)
	doc, err := cleanObject(spec, "gate spec")
	if err != nil {
		return GateSpec{}, fmt.Errorf("store: save gate spec of %q: %w", experiment, err)
	}
	g, err := scanGateSpec(s.pool.QueryRow(ctx, `
INSERT INTO gate_specs AS g (experiment, spec, author, updated_at) VALUES ($1, $2::jsonb, $3, now())
ON CONFLICT (experiment) DO UPDATE SET spec = EXCLUDED.spec, author = EXCLUDED.author, updated_at = EXCLUDED.updated_at
RETURNING `+gateSpecColumns, experiment, doc, cleanText(author)))
	if err != nil {
		return GateSpec{}, fmt.Errorf("store: save gate spec of %q: %w", experiment, err)
	}
	return g, nil
}

// GateSpec returns experiment's promotion gate spec, or an error wrapping
// [ErrNotFound] when none was saved.
func (s *Store) GateSpec(ctx context.Context, experiment string) (GateSpec, error) {
	g, err := scanGateSpec(s.pool.QueryRow(ctx, `SELECT `+gateSpecColumns+` FROM gate_specs WHERE experiment = $1`, experiment))
	if errors.Is(err, pgx.ErrNoRows) {
		return GateSpec{}, fmt.Errorf("store: gate spec of %q: %w", experiment, ErrNotFound)
	}
	if err != nil {
		return GateSpec{}, fmt.Errorf("store: gate spec of %q: %w", experiment, err)
	}
	return g, nil
}

// GateSpecsOf returns the stored gate specs of the named experiments, by
// name; an experiment without one is absent.
func (s *Store) GateSpecsOf(ctx context.Context, names []string) (map[string]GateSpec, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+gateSpecColumns+` FROM gate_specs WHERE experiment = ANY($1::text[])`, names)
	if err != nil {
		return nil, fmt.Errorf("store: gate specs: %w", err)
	}
	out := map[string]GateSpec{}
	var g GateSpec
	_, err = pgx.ForEachRow(rows, []any{&g.Experiment, &g.Spec, &g.Author, &g.UpdatedAt}, func() error {
		g.UpdatedAt = g.UpdatedAt.UTC()
		out[g.Experiment] = g
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: gate specs: %w", err)
	}
	return out, nil
}

func scanGateSpec(row pgx.Row) (GateSpec, error) {
	var g GateSpec
	err := row.Scan(&g.Experiment, &g.Spec, &g.Author, &g.UpdatedAt)
	g.UpdatedAt = g.UpdatedAt.UTC()
	return g, err
}
