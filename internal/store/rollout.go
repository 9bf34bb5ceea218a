package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrConflict reports that a rollout changed since it was read (its revision
// moved on), or that a new rollout's experiment or flag is taken. Read it
// again and retry, or give up.
var ErrConflict = errors.New("store: conflict")

// Rollout is an experiment's rollout as stored. Plan and Baseline are JSON
// documents the store does not interpret (a rollout.Plan and the
// controller's count snapshot).
type Rollout struct {
	Experiment string
	Flag       string
	Plan       []byte
	Step       int
	Status     string
	// Revision starts at 1 and grows by one with every change.
	Revision int64
	// EnteredAt is when the current step was entered or last resumed: the
	// start of the gate's window.
	EnteredAt time.Time
	Baseline  []byte
	UpdatedAt time.Time
}

// RolloutEvent is one entry of a rollout's audit log.
type RolloutEvent struct {
	ID         int64
	Experiment string
	At         time.Time
	// Actor is who made the change: a token's name, or "controller".
	Actor string
	// Action is what was done: plan, promote, rollback, pause, resume, kill.
	Action string
	// Cause is why: manual, gate_passed, gate_failed, kill_switch.
	Cause    string
	FromStep int
	ToStep   int
	// Status and Revision are the rollout's after the change.
	Status   string
	Revision int64
	Reason   string
	// Detail is a JSON object with the evidence, or nil.
	Detail []byte
}

const rolloutColumns = `experiment, flag, plan, step, status, revision, entered_at, baseline, updated_at`

// CreateRollout stores a new rollout at revision 1 and records ev (its
// Revision, Status and ToStep are taken from r). It returns an error wrapping
// [ErrConflict] when the experiment already has a rollout or another
// experiment uses the flag.
func (s *Store) CreateRollout(ctx context.Context, r Rollout, ev RolloutEvent) (Rollout, error) {
	r.Revision = 1
	return s.writeRollout(ctx, r, 0, ev)
}

// UpdateRollout replaces the rollout's plan, step, status, entered_at and
// baseline with r's, provided its revision is still expect, sets the revision
// to expect+1 and records ev, in one transaction. It returns an error
// wrapping [ErrConflict] when the revision moved on, and [ErrNotFound] when
// there is no such rollout.
func (s *Store) UpdateRollout(ctx context.Context, r Rollout, expect int64, ev RolloutEvent) (Rollout, error) {
	r.Revision = expect + 1
	return s.writeRollout(ctx, r, expect, ev)
}

func (s *Store) writeRollout(ctx context.Context, r Rollout, expect int64, ev RolloutEvent) (Rollout, error) {
	plan, err := cleanObject(r.Plan, "rollout plan")
	if err != nil {
		return Rollout{}, fmt.Errorf("store: rollout of %q: %w", r.Experiment, err)
	}
	baseline := "{}"
	if len(r.Baseline) > 0 {
		if baseline, err = cleanObject(r.Baseline, "rollout baseline"); err != nil {
			return Rollout{}, fmt.Errorf("store: rollout of %q: %w", r.Experiment, err)
		}
	}
	var detail *string
	if len(ev.Detail) > 0 {
		d, err := cleanObject(ev.Detail, "rollout event detail")
		if err != nil {
			return Rollout{}, fmt.Errorf("store: rollout of %q: %w", r.Experiment, err)
		}
		detail = &d
	}
	var out Rollout
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var row pgx.Row
		if expect == 0 {
			row = tx.QueryRow(ctx, `
INSERT INTO rollouts (experiment, flag, plan, step, status, revision, entered_at, baseline, updated_at)
VALUES ($1, $2, $3::jsonb, $4, $5, 1, $6, $7::jsonb, now())
RETURNING `+rolloutColumns, r.Experiment, r.Flag, plan, r.Step, r.Status, r.EnteredAt, baseline)
		} else {
			row = tx.QueryRow(ctx, `
UPDATE rollouts SET plan = $2::jsonb, step = $3, status = $4, revision = revision + 1,
       entered_at = $5, baseline = $6::jsonb, updated_at = now()
WHERE experiment = $1 AND revision = $7
RETURNING `+rolloutColumns, r.Experiment, plan, r.Step, r.Status, r.EnteredAt, baseline, expect)
		}
		var err error
		if out, err = scanRollout(row); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
INSERT INTO rollout_events (experiment, at, actor, action, cause, from_step, to_step, status, revision, reason, detail)
VALUES ($1, now(), $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb)`,
			out.Experiment, cleanText(ev.Actor), cleanText(ev.Action), cleanText(ev.Cause), ev.FromStep, out.Step,
			out.Status, out.Revision, cleanText(ev.Reason), detail)
		return err
	})
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return out, nil
	case errors.As(err, &pgErr) && pgErr.Code == "23505": // unique_violation
		return Rollout{}, fmt.Errorf("store: rollout of %q: experiment or flag %q already has a rollout: %w", r.Experiment, r.Flag, ErrConflict)
	case errors.Is(err, pgx.ErrNoRows):
		if _, gerr := s.Rollout(ctx, r.Experiment); gerr != nil {
			return Rollout{}, gerr
		}
		return Rollout{}, fmt.Errorf("store: rollout of %q changed since revision %d: %w", r.Experiment, expect, ErrConflict)
	}
	return Rollout{}, fmt.Errorf("store: rollout of %q: %w", r.Experiment, err)
}

// Rollout returns the experiment's rollout, or an error wrapping
// [ErrNotFound].
func (s *Store) Rollout(ctx context.Context, experiment string) (Rollout, error) {
	r, err := scanRollout(s.pool.QueryRow(ctx, `SELECT `+rolloutColumns+` FROM rollouts WHERE experiment = $1`, experiment))
	if errors.Is(err, pgx.ErrNoRows) {
		return Rollout{}, fmt.Errorf("store: rollout of %q: %w", experiment, ErrNotFound)
	}
	if err != nil {
		return Rollout{}, fmt.Errorf("store: rollout of %q: %w", experiment, err)
	}
	return r, nil
}

// Rollouts returns every rollout, by experiment.
func (s *Store) Rollouts(ctx context.Context) ([]Rollout, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+rolloutColumns+` FROM rollouts ORDER BY experiment`)
	if err != nil {
		return nil, fmt.Errorf("store: rollouts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Rollout, error) { return scanRollout(row) })
	if err != nil {
		return nil, fmt.Errorf("store: rollouts: %w", err)
	}
	return out, nil
}

// RolloutEvents returns the experiment's audit log, oldest first: the last
// limit entries (all when limit <= 0).
func (s *Store) RolloutEvents(ctx context.Context, experiment string, limit int) ([]RolloutEvent, error) {
	if limit <= 0 {
		limit = 1 << 30
	}
	rows, err := s.pool.Query(ctx, `
SELECT id, experiment, at, actor, action, cause, from_step, to_step, status, revision, reason, detail FROM (
  SELECT * FROM rollout_events WHERE experiment = $1 ORDER BY id DESC LIMIT $2
) e ORDER BY id`, experiment, limit)
	if err != nil {
		return nil, fmt.Errorf("store: rollout events of %q: %w", experiment, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (RolloutEvent, error) {
		var e RolloutEvent
		err := row.Scan(&e.ID, &e.Experiment, &e.At, &e.Actor, &e.Action, &e.Cause, &e.FromStep, &e.ToStep,
			&e.Status, &e.Revision, &e.Reason, &e.Detail)
		e.At = e.At.UTC()
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: rollout events of %q: %w", experiment, err)
	}
	return out, nil
}

func scanRollout(row pgx.Row) (Rollout, error) {
	var r Rollout
	err := row.Scan(&r.Experiment, &r.Flag, &r.Plan, &r.Step, &r.Status, &r.Revision, &r.EnteredAt, &r.Baseline, &r.UpdatedAt)
	r.EnteredAt, r.UpdatedAt = r.EnteredAt.UTC(), r.UpdatedAt.UTC()
	return r, err
}

// SetRolloutBaseline replaces the rollout's baseline, provided its revision
// is still revision, without changing the revision or the audit log: the
// baseline is the controller's bookkeeping, not a change of what users get.
// It returns an error wrapping [ErrConflict] when the revision moved on.
func (s *Store) SetRolloutBaseline(ctx context.Context, experiment string, revision int64, baseline []byte) error {
	doc, err := cleanObject(baseline, "rollout baseline")
	if err != nil {
		return fmt.Errorf("store: baseline of %q: %w", experiment, err)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE rollouts SET baseline = $3::jsonb WHERE experiment = $1 AND revision = $2`, experiment, revision, doc)
	if err != nil {
		return fmt.Errorf("store: baseline of %q: %w", experiment, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: baseline of %q: revision %d is not current: %w", experiment, revision, ErrConflict)
	}
	return nil
}
