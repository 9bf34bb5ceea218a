package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Sweep statuses.
const (
	SweepRunning   = "running"
	SweepPaused    = "paused"
	SweepCancelled = "cancelled"
	SweepComplete  = "complete"
	SweepFailed    = "failed"
)

// ErrSweepMoved reports a chunk commit refused because the sweep is no
// longer where the runner thinks: paused, cancelled, taken over, or its
// checkpoint advanced. Nothing of the chunk was written.
var ErrSweepMoved = errors.New("store: sweep moved on")

// Sweep is one reconciliation sweep (docs/reconcile.md).
type Sweep struct {
	ID         int64
	Experiment string
	// Name names what is compared, usually the table; Operation is where
	// its counts land, "reconcile:<name>".
	Name      string
	Operation string
	// Spec is the sweep's configuration as JSON (sources, tables, key,
	// segments, rate), owned by the sweep runner.
	Spec       json.RawMessage
	Status     string
	Error      string
	Checkpoint *string
	Chunks     int64
	RowsDone   int64
	Estimate   int64
	// Counts is the sum of the committed chunks' counts as JSON, owned by
	// the sweep runner.
	Counts     json.RawMessage
	CreatedBy  string
	CreatedAt  time.Time
	StartedAt  *time.Time
	UpdatedAt  time.Time
	FinishedAt *time.Time
}

const sweepColumns = `id, experiment, name, operation, spec, status, error, checkpoint, chunks, rows_done, estimate, counts,
	created_by, created_at, started_at, updated_at, finished_at`

func scanSweep(row pgx.Row) (Sweep, error) {
	var s Sweep
	err := row.Scan(&s.ID, &s.Experiment, &s.Name, &s.Operation, &s.Spec, &s.Status, &s.Error, &s.Checkpoint, &s.Chunks,
		&s.RowsDone, &s.Estimate, &s.Counts, &s.CreatedBy, &s.CreatedAt, &s.StartedAt, &s.UpdatedAt, &s.FinishedAt)
	return s, err
}

// CreateSweep records a new running sweep and returns it.
func (s *Store) CreateSweep(ctx context.Context, sw Sweep) (Sweep, error) {
	row := s.pool.QueryRow(ctx, `INSERT INTO reconcile_sweeps (experiment, name, operation, spec, status, created_by)
		VALUES ($1, $2, $3, $4, 'running', $5) RETURNING `+sweepColumns,
		cleanText(sw.Experiment), cleanText(sw.Name), cleanText(sw.Operation), sw.Spec, cleanText(sw.CreatedBy))
	out, err := scanSweep(row)
	if err != nil {
		return Sweep{}, fmt.Errorf("store: create sweep: %w", err)
	}
	return out, nil
}

// Sweep returns one sweep, or an error wrapping [ErrNotFound].
func (s *Store) Sweep(ctx context.Context, id int64) (Sweep, error) {
	out, err := scanSweep(s.pool.QueryRow(ctx, `SELECT `+sweepColumns+` FROM reconcile_sweeps WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Sweep{}, fmt.Errorf("%w: sweep %d", ErrNotFound, id)
	}
	if err != nil {
		return Sweep{}, fmt.Errorf("store: sweep: %w", err)
	}
	return out, nil
}

// Sweeps returns an experiment's sweeps (every experiment's when empty),
// newest first, at most limit.
func (s *Store) Sweeps(ctx context.Context, experiment string, limit int) ([]Sweep, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+sweepColumns+` FROM reconcile_sweeps
		WHERE $1 = '' OR experiment = $1 ORDER BY id DESC LIMIT $2`, experiment, limit)
	if err != nil {
		return nil, fmt.Errorf("store: sweeps: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Sweep, error) { return scanSweep(r) })
	if err != nil {
		return nil, fmt.Errorf("store: sweeps: %w", err)
	}
	return out, nil
}

// SetSweepStatus moves a sweep to status if its status is one of from, and
// returns it; a sweep in another status is left alone and the error wraps
// [ErrSweepMoved]. It releases the sweep's lease: a runner that held it
// cannot commit another chunk, and a resumed sweep is claimed at once.
func (s *Store) SetSweepStatus(ctx context.Context, id int64, status, reason string, from ...string) (Sweep, error) {
	row := s.pool.QueryRow(ctx, `UPDATE reconcile_sweeps SET status = $2, error = $3, updated_at = now(),
			finished_at = CASE WHEN $2 IN ('cancelled', 'complete', 'failed') THEN now() END,
			lease_until = NULL, owner = ''  -- the runner that held it stops at its next commit
		WHERE id = $1 AND status = ANY($4) RETURNING `+sweepColumns, id, status, cleanText(reason), from)
	out, err := scanSweep(row)
	if errors.Is(err, pgx.ErrNoRows) {
		cur, gerr := s.Sweep(ctx, id)
		if gerr != nil {
			return Sweep{}, gerr
		}
		return cur, fmt.Errorf("%w: sweep %d is %s", ErrSweepMoved, id, cur.Status)
	}
	if err != nil {
		return Sweep{}, fmt.Errorf("store: set sweep status: %w", err)
	}
	return out, nil
}

// ClaimSweep gives owner the oldest running sweep whose lease has expired
// (or that has none), leased for lease; ok is false when there is none.
func (s *Store) ClaimSweep(ctx context.Context, owner string, lease time.Duration) (sw Sweep, ok bool, err error) {
	row := s.pool.QueryRow(ctx, `UPDATE reconcile_sweeps SET owner = $1, lease_until = now() + $2::interval,
			started_at = coalesce(started_at, now()), updated_at = now()
		WHERE id = (SELECT id FROM reconcile_sweeps WHERE status = 'running' AND (lease_until IS NULL OR lease_until < now())
			ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING `+sweepColumns, owner, lease.String())
	sw, err = scanSweep(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return Sweep{}, false, nil
	}
	if err != nil {
		return Sweep{}, false, fmt.Errorf("store: claim sweep: %w", err)
	}
	return sw, true, nil
}

// SweepChunk is one committed chunk of a sweep.
type SweepChunk struct {
	ID    int64
	Owner string
	// From is the checkpoint the chunk starts after (nil: the beginning), To
	// where it ends (nil: the end; the sweep is then complete).
	From, To *string
	// Rows is the old side's rows in the chunk, Estimate the total.
	Rows, Estimate int64
	// Counts is the sweep's counts after this chunk, as JSON.
	Counts json.RawMessage
	Lease  time.Duration
	// Batch holds the chunk's counts, samples and signatures.
	Batch *Batch
}

// CommitSweepChunk writes a chunk in one transaction: its batch (as
// [Store.Apply] does) and the sweep's new checkpoint, counts and progress,
// renewing the owner's lease. It refuses (nothing written, an error wrapping
// [ErrSweepMoved]) unless the sweep is running, owned by c.Owner, and at
// checkpoint c.From, so a chunk is never counted twice.
func (s *Store) CommitSweepChunk(ctx context.Context, c SweepChunk) error {
	var p *prepared
	if c.Batch != nil {
		var err error
		if p, err = prepare(c.Batch); err != nil {
			return err
		}
	}
	status := SweepRunning
	if c.To == nil {
		status = SweepComplete
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE reconcile_sweeps SET checkpoint = $4, chunks = chunks + 1, rows_done = rows_done + $5,
				estimate = CASE WHEN $8 = 'complete' THEN rows_done + $5 ELSE greatest($6, rows_done + $5) END, counts = $7, status = $8, updated_at = now(), lease_until = now() + $9::interval,
				finished_at = CASE WHEN $8 = 'complete' THEN now() END
			WHERE id = $1 AND owner = $2 AND status = 'running' AND checkpoint IS NOT DISTINCT FROM $3`,
			c.ID, c.Owner, c.From, c.To, c.Rows, c.Estimate, c.Counts, status, c.Lease.String())
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return ErrSweepMoved
		}
		if p != nil && !p.empty() {
			return p.write(ctx, tx, s.opts)
		}
		return nil
	})
	if errors.Is(err, ErrSweepMoved) {
		return fmt.Errorf("%w: sweep %d", ErrSweepMoved, c.ID)
	}
	if err != nil {
		return fmt.Errorf("store: commit sweep chunk: %w", err)
	}
	return nil
}

// RenewSweepLease extends owner's lease of a running sweep; ok is false when
// the sweep is no longer running under owner.
func (s *Store) RenewSweepLease(ctx context.Context, id int64, owner string, lease time.Duration) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE reconcile_sweeps SET lease_until = now() + $3::interval
		WHERE id = $1 AND owner = $2 AND status = 'running'`, id, owner, lease.String())
	if err != nil {
		return false, fmt.Errorf("store: renew sweep lease: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// CompletedSweeps returns an experiment's sweeps that completed and started
// at or after since, newest first.
func (s *Store) CompletedSweeps(ctx context.Context, experiment string, since time.Time) ([]Sweep, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+sweepColumns+` FROM reconcile_sweeps
		WHERE experiment = $1 AND status = 'complete' AND started_at >= $2 ORDER BY id DESC`, experiment, since)
	if err != nil {
		return nil, fmt.Errorf("store: clean sweeps: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Sweep, error) { return scanSweep(r) })
	if err != nil {
		return nil, fmt.Errorf("store: clean sweeps: %w", err)
	}
	return out, nil
}
