package service

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parityhq/parity/pkg/migration"
)

// Order is the service's view of an order, whichever database it comes
// from. Both stores map their schema to it, so Parity compares like with
// like.
type Order struct {
	ID         int64  `json:"id"`
	CustomerID int64  `json:"customer_id"`
	TotalCents int64  `json:"total_cents"`
	Status     string `json:"status"` // pending, paid, shipped, cancelled
}

// StatusChange is the write the service migrates.
type StatusChange struct {
	OrderID int64  `json:"order_id"`
	Status  string `json:"status"`
}

// ErrNotFound is returned by both stores with the same text, so the
// verifier sees the same error class on both sides.
var ErrNotFound = errors.New("not found")

func notFound(id int64) error { return fmt.Errorf("order %d: %w", id, ErrNotFound) }

func validStatus(s string) bool {
	switch s {
	case "pending", "paid", "shipped", "cancelled":
		return true
	}
	return false
}

// oldStore is the old schema: one orders table, totals in numeric dollars.
type oldStore struct{ db *pgxpool.Pool }

func (s *oldStore) Order(ctx context.Context, id int64) (Order, error) {
	o := Order{ID: id}
	err := s.db.QueryRow(ctx,
		`SELECT customer_id, (total * 100)::bigint, status FROM orders WHERE id = $1`, id,
	).Scan(&o.CustomerID, &o.TotalCents, &o.Status)
	if errors.Is(err, pgx.ErrNoRows) {
		return Order{}, notFound(id)
	}
	return o, err
}

func (s *oldStore) SetStatus(ctx context.Context, c StatusChange) (migration.WriteResult, error) {
	tag, err := s.db.Exec(ctx, `UPDATE orders SET status = $2, updated_at = now() WHERE id = $1`, c.OrderID, c.Status)
	return migration.WriteResult{RowsAffected: tag.RowsAffected()}, err
}

// newStore is the new schema: customer_orders, integer cents, upper-case
// states.
type newStore struct{ db *pgxpool.Pool }

func (s *newStore) Order(ctx context.Context, id int64) (Order, error) {
	o := Order{ID: id}
	err := s.db.QueryRow(ctx,
		`SELECT customer_id, total_cents, lower(state) FROM customer_orders WHERE order_id = $1`, id,
	).Scan(&o.CustomerID, &o.TotalCents, &o.Status)
	if errors.Is(err, pgx.ErrNoRows) {
		return Order{}, notFound(id)
	}
	return o, err
}

func (s *newStore) SetStatus(ctx context.Context, c StatusChange) (migration.WriteResult, error) {
	tag, err := s.db.Exec(ctx, `UPDATE customer_orders SET state = upper($2), updated_at = now() WHERE order_id = $1`, c.OrderID, c.Status)
	return migration.WriteResult{RowsAffected: tag.RowsAffected()}, err
}

// createDatabase creates the database dbURL names, through adminURL, unless
// it exists.
func createDatabase(ctx context.Context, adminURL, dbURL string) error {
	u, err := url.Parse(dbURL)
	if err != nil {
		return fmt.Errorf("database url: %w", err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" {
		return fmt.Errorf("database url %s names no database", u.Redacted())
	}
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("admin database: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// The seed: the same orders in both schemas. Orders 1 to 5 are the ones
// [Traffic] reads, orders 6 to 8 the ones whose status it changes (see
// [Traffic] for why they differ), and orders [ColdFirst] to [ColdLast] are
// cold: the traffic never touches them, as most rows of a real migration. With
// seedBugs, the backfill into the new schema rounded order 4's total
// differently and has not reached order 5 yet, which the traffic's reads
// show; and it did the same to cold orders [ColdRounded] and
// [ColdMissing], which only a reconciliation sweep of every row finds
// (docs/reconcile.md).
//
// The new schema has a view, orders_v, that shows customer_orders in the
// old schema's shape (column names, dollars, lower-case status), so the two
// can be compared row by row.
const oldSchema = `
CREATE TABLE IF NOT EXISTS orders (
	id          bigint PRIMARY KEY,
	customer_id bigint NOT NULL,
	total       numeric(12,2) NOT NULL,
	status      text NOT NULL,
	updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO orders (id, customer_id, total, status) VALUES
	(1, 123, 19.99, 'paid'),
	(2, 456, 5.00, 'pending'),
	(3, 789, 120.50, 'shipped'),
	(4, 789, 10.01, 'paid'),
	(5, 321, 42.00, 'pending'),
	(6, 456, 7.50, 'pending'),
	(7, 123, 64.00, 'paid'),
	(8, 321, 0.99, 'pending')
ON CONFLICT (id) DO NOTHING;
INSERT INTO orders (id, customer_id, total, status, updated_at)
SELECT g, 100 + g % 50, (g * 37 % 10000) / 100.0, (ARRAY['pending', 'paid', 'shipped', 'cancelled'])[g % 4 + 1], timestamptz '2026-01-01'
FROM generate_series(100, 2000) g
ON CONFLICT (id) DO NOTHING;`

const newSchema = `
CREATE TABLE IF NOT EXISTS customer_orders (
	order_id    bigint PRIMARY KEY,
	customer_id bigint NOT NULL,
	total_cents bigint NOT NULL,
	state       text NOT NULL CHECK (state IN ('PENDING', 'PAID', 'SHIPPED', 'CANCELLED')),
	updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO customer_orders (order_id, customer_id, total_cents, state) VALUES
	(1, 123, 1999, 'PAID'),
	(2, 456, 500, 'PENDING'),
	(3, 789, 12050, 'SHIPPED'),
	(6, 456, 750, 'PENDING'),
	(7, 123, 6400, 'PAID'),
	(8, 321, 99, 'PENDING'),
%s
ON CONFLICT (order_id) DO NOTHING;
INSERT INTO customer_orders (order_id, customer_id, total_cents, state, updated_at)
SELECT g, 100 + g %% 50, g * 37 %% 10000 - CASE WHEN g = %d THEN 1 ELSE 0 END,
	upper((ARRAY['pending', 'paid', 'shipped', 'cancelled'])[g %% 4 + 1]), timestamptz '2026-01-01'
FROM generate_series(100, 2000) g WHERE g <> %d
ON CONFLICT (order_id) DO NOTHING;
CREATE OR REPLACE VIEW orders_v AS
SELECT order_id AS id, customer_id, total_cents / 100.0 AS total, lower(state) AS status, updated_at FROM customer_orders;`

// The cold orders and their backfill bugs (with seedBugs).
const (
	ColdFirst   = 100  // the first cold order
	ColdLast    = 2000 // the last cold order
	ColdRounded = 1234 // its total is a cent short in the new schema
	ColdMissing = 1777 // missing from the new schema
)

const (
	// newSeedCorrect is orders 4 and 5 as they are in the old schema.
	newSeedCorrect = `	(4, 789, 1001, 'PAID'),
	(5, 321, 4200, 'PENDING')`
	// newSeedBugs is order 4 rounded differently, and no order 5.
	newSeedBugs = `	(4, 789, 1000, 'PAID')`
)

func migrateOld(ctx context.Context, db *pgxpool.Pool, reset bool) error {
	if reset {
		if _, err := db.Exec(ctx, `DROP TABLE IF EXISTS orders`); err != nil {
			return err
		}
	}
	if _, err := db.Exec(ctx, oldSchema); err != nil {
		return fmt.Errorf("old schema: %w", err)
	}
	return nil
}

func migrateNew(ctx context.Context, db *pgxpool.Pool, reset, seedBugs bool) error {
	if reset {
		if _, err := db.Exec(ctx, `DROP TABLE IF EXISTS customer_orders CASCADE`); err != nil {
			return err
		}
	}
	rows, rounded, missing := newSeedCorrect, 0, 0
	if seedBugs {
		rows, rounded, missing = newSeedBugs, ColdRounded, ColdMissing
	}
	if _, err := db.Exec(ctx, fmt.Sprintf(newSchema, rows, rounded, missing)); err != nil {
		return fmt.Errorf("new schema: %w", err)
	}
	return nil
}
