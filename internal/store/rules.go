package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// rulesLockSpace is the first key of the two-key advisory lock SaveRules
// takes per experiment (the second is hashtext(experiment)). Two-key advisory
// locks never collide with one-key ones such as tern's migration lock; two
// experiments whose names hash alike merely wait for each other.
const rulesLockSpace = 0x70617279 // "pary"

const rulesColumns = `experiment, version, rules, author, reason, created_at`

// SaveRules stores rules as experiment's next version of its diff rules and
// returns what it stored. Versions start at 1 per experiment and go up by 1:
// concurrent saves for one experiment are serialised (by a transaction-scoped
// advisory lock), so each gets its own version and none fails or repeats one.
//
// rules must be a JSON object (a diff.Rules document); the store does not
// otherwise validate it, so callers check it with diff.Compile first. Its
// "version" member is set to the version assigned, so a diff.Rules decoded
// from [Rules.Rules] carries the version its results must report.
//
// Rules do not make an experiment: an experiment may have rules before it
// has any pair (a verifier then judges its first pairs with them), and
// [Store.Experiments] lists it only once [Store.Apply] has written something
// for it.
func (s *Store) SaveRules(ctx context.Context, experiment string, rules json.RawMessage, author, reason string) (Rules, error) {
	experiment = cleanText(experiment)
	doc, err := cleanRules(rules)
	if err != nil {
		return Rules{}, fmt.Errorf("store: save rules of %q: %w", experiment, err)
	}
	var out Rules
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Two statements in one round trip. Under READ COMMITTED the insert
		// takes its snapshot only once the lock is granted, so it sees the
		// version the previous holder committed.
		b := &pgx.Batch{}
		b.Queue(`SELECT pg_advisory_xact_lock($1, hashtext($2))`, int32(rulesLockSpace), experiment)
		b.Queue(`
INSERT INTO diff_rules (experiment, version, rules, author, reason)
SELECT $1, v.version, $2::jsonb || jsonb_build_object('version', v.version), $3, $4
FROM (SELECT coalesce(max(version), 0) + 1 AS version FROM diff_rules WHERE experiment = $1) v
RETURNING `+rulesColumns, experiment, doc, cleanText(author), cleanText(reason)).QueryRow(func(row pgx.Row) error {
			var err error
			out, err = scanRules(row)
			return err
		})
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return Rules{}, fmt.Errorf("store: save rules of %q: %w", experiment, err)
	}
	return out, nil
}

// Rules returns the latest version of experiment's diff rules, or an error
// wrapping [ErrNotFound] when none was saved (the caller then judges with
// empty rules, version 0).
func (s *Store) Rules(ctx context.Context, experiment string) (Rules, error) {
	r, err := scanRules(s.pool.QueryRow(ctx, `SELECT `+rulesColumns+` FROM diff_rules
WHERE experiment = $1 ORDER BY version DESC LIMIT 1`, experiment))
	if errors.Is(err, pgx.ErrNoRows) {
		return Rules{}, fmt.Errorf("store: rules of %q: %w", experiment, ErrNotFound)
	}
	if err != nil {
		return Rules{}, fmt.Errorf("store: rules of %q: %w", experiment, err)
	}
	return r, nil
}

// RulesHistory returns experiment's versions of its diff rules, newest
// first: at most limit, or [DefaultLimit] when limit is 0 or less. An
// experiment without rules has an empty history, not an error.
func (s *Store) RulesHistory(ctx context.Context, experiment string, limit int) ([]Rules, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	rows, err := s.pool.Query(ctx, `SELECT `+rulesColumns+` FROM diff_rules
WHERE experiment = $1 ORDER BY version DESC LIMIT $2`, experiment, limit)
	if err != nil {
		return nil, fmt.Errorf("store: rules history of %q: %w", experiment, err)
	}
	out, err := collectRules(rows)
	if err != nil {
		return nil, fmt.Errorf("store: rules history of %q: %w", experiment, err)
	}
	return out, nil
}

// AllRules returns the latest version of every experiment's diff rules,
// ordered by experiment. Experiments without saved rules are absent.
func (s *Store) AllRules(ctx context.Context) ([]Rules, error) {
	// DISTINCT ON walks the primary key (experiment, version) backwards per
	// experiment.
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT ON (experiment) `+rulesColumns+` FROM diff_rules
ORDER BY experiment, version DESC`)
	if err != nil {
		return nil, fmt.Errorf("store: all rules: %w", err)
	}
	out, err := collectRules(rows)
	if err != nil {
		return nil, fmt.Errorf("store: all rules: %w", err)
	}
	return out, nil
}

func collectRules(rows pgx.Rows) ([]Rules, error) {
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Rules, error) { return scanRules(row) })
	if out == nil && err == nil {
		out = []Rules{} // JSON []
	}
	return out, err
}

func scanRules(row pgx.Row) (Rules, error) {
	var r Rules
	var doc []byte
	err := row.Scan(&r.Experiment, &r.Version, &doc, &r.Author, &r.Reason, &r.CreatedAt)
	r.Rules = doc
	r.CreatedAt = r.CreatedAt.UTC()
	return r, err
}
