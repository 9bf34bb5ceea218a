package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"

	"github.com/parityhq/parity/pkg/segment"
)

// Errors returned by the store, wrapped; test with [errors.Is].
var (
	// ErrNotFound reports an unknown experiment or sample.
	ErrNotFound = errors.New("store: not found")
	// ErrAlreadyApplied reports that [Store.Apply] refused a batch because an
	// earlier batch already recorded some (not all) of its stream sequences,
	// e.g. two workers raced on a redelivered message. Nothing of the refused
	// batch was written, and retrying it unchanged cannot succeed: ask
	// [Store.Applied] which messages to drop and apply a batch of the rest.
	ErrAlreadyApplied = errors.New("store: stream sequences already applied")
	// ErrAllApplied reports that [Store.Apply] wrote nothing because earlier
	// batches already recorded every one of its stream sequences: all its
	// messages are counted already. That is the outcome a retry after a lost
	// commit reply expects (the earlier batch was this one), and also what a
	// worker meets whose redelivered messages another worker counted first;
	// either way the messages may be acknowledged. It is an error, not nil,
	// so the caller can tell "written now" from "written before" and count
	// each batch's pairs in its own statistics once (see internal/verifier).
	ErrAllApplied = errors.New("store: every stream sequence already applied")
	// ErrInvalidOption reports an [Options] field with a value out of range.
	ErrInvalidOption = errors.New("store: invalid option")
)

// Defaults for [Options].
const (
	DefaultSegmentCap    = segment.DefaultCap
	DefaultExperimentCap = 1000
	DefaultOperationCap  = 100
	DefaultSamplesPerKey = 50
	// DefaultConnectTimeout bounds each connection attempt when the database
	// URL sets no connect_timeout, so an unreachable host fails instead of
	// hanging until the caller's context ends.
	DefaultConnectTimeout = 10 * time.Second
)

// Options configure a [Store]. The zero value means the defaults.
type Options struct {
	// SegmentCap is how many distinct segments an experiment without a
	// stored segment definition admits before further ones fold into
	// [OtherSegment] (an experiment with one uses its cap: see
	// [Store.EnsureSegmentConfig]). Defaults to 100.
	SegmentCap int
	// ExperimentCap is how many distinct experiments the store admits;
	// pairs of further experiments are counted in [OtherExperiment], and
	// [Store.Folded] counts them. Defaults to 1,000.
	ExperimentCap int
	// OperationCap is how many distinct operations an experiment admits;
	// pairs of further operations are counted in its [OtherOperation], and
	// [Store.Folded] counts them. Defaults to 100.
	OperationCap int
	// SamplesPerKey is how many divergence samples are kept per (experiment,
	// operation, segment); the newest are kept. Defaults to 50.
	SamplesPerKey int
	// MinuteRetention is how long per-minute counts are kept: before the
	// start of the hour MinuteRetention ago, [Store.PruneMinutes] deletes
	// them, and reads answer from the hourly rollup, widening a window edge
	// that lies there to its whole hour. Zero or negative keeps them forever
	// (the store's default; the collector sets its own).
	MinuteRetention time.Duration
	// MaxConns is the size of the connection pool. Defaults to 0, which means
	// pgx's default: max(4, number of CPUs), or pool_max_conns from the URL.
	MaxConns int32
}

// DefaultOptions returns the options the zero value stands for.
func DefaultOptions() Options {
	return Options{SegmentCap: DefaultSegmentCap, SamplesPerKey: DefaultSamplesPerKey, ExperimentCap: DefaultExperimentCap,
		OperationCap: DefaultOperationCap}
}

// withDefaults validates o and fills in its zero fields.
func (o Options) withDefaults() (Options, error) {
	switch {
	case o.SegmentCap < 0:
		return o, fmt.Errorf("%w: SegmentCap %d is negative", ErrInvalidOption, o.SegmentCap)
	case o.ExperimentCap < 0:
		return o, fmt.Errorf("%w: ExperimentCap %d is negative", ErrInvalidOption, o.ExperimentCap)
	case o.OperationCap < 0:
		return o, fmt.Errorf("%w: OperationCap %d is negative", ErrInvalidOption, o.OperationCap)
	case o.SamplesPerKey < 0:
		return o, fmt.Errorf("%w: SamplesPerKey %d is negative", ErrInvalidOption, o.SamplesPerKey)
	case o.MaxConns < 0:
		return o, fmt.Errorf("%w: MaxConns %d is negative", ErrInvalidOption, o.MaxConns)
	}
	if o.SegmentCap == 0 {
		o.SegmentCap = DefaultSegmentCap
	}
	if o.SamplesPerKey == 0 {
		o.SamplesPerKey = DefaultSamplesPerKey
	}
	if o.ExperimentCap == 0 {
		o.ExperimentCap = DefaultExperimentCap
	}
	if o.OperationCap == 0 {
		o.OperationCap = DefaultOperationCap
	}
	return o, nil
}

// Store is Parity's PostgreSQL store. It is safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	opts   Options
	attrs  attrsCache
	names  knownNames
	rolled rolledCache
	sealed sealedCache
}

//go:embed migrations/*.sql
var migrationFiles embed.FS

// versionTable is the table tern records the schema version in.
const versionTable = "parity_schema_version"

// maintenanceDB is the database Open connects to to create a missing one.
const maintenanceDB = "postgres"

// Open connects to the PostgreSQL database at databaseURL (a URL or a
// keyword/value string, as pgx accepts), creating the database if it does not
// exist and migrating its schema, and returns a [Store] over a connection pool.
//
// Concurrent calls are safe: a database created concurrently by another
// process is used, and migrations run under an advisory lock.
func Open(ctx context.Context, databaseURL string, opts Options) (*Store, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, redact(fmt.Errorf("store: parse database URL: %w", err), databaseURL)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["max_parallel_workers_per_gather"]; !ok {
		// Every statement reads at most tens of thousands of rows (the
		// rollups see to it): starting parallel workers costs more than it
		// saves, tens of milliseconds on a busy machine.
		cfg.ConnConfig.RuntimeParams["max_parallel_workers_per_gather"] = "0"
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["work_mem"]; !ok {
		// The dashboard's reads sort and hash tens of thousands of rows (a
		// week's chart in buckets of 6 hours groups 84,000 hour rows at
		// 5 operations × 100 segments): at the server's default of 4 MB
		// the planner, which cannot see how few buckets date_bin leaves,
		// sorts them on disk instead of hashing them in memory, 3× slower.
		// It is a per-sort limit, so a pool of a few connections stays far
		// from it in total.
		cfg.ConnConfig.RuntimeParams["work_mem"] = "16MB"
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["timezone"]; !ok {
		cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}

	conn, err := connectCreating(ctx, cfg.ConnConfig)
	if err != nil {
		return nil, redact(err, databaseURL, cfg.ConnConfig.Password)
	}
	err = migrateSchema(ctx, conn)
	closeConn(conn)
	if err != nil {
		return nil, redact(err, databaseURL, cfg.ConnConfig.Password)
	}

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, redact(fmt.Errorf("store: open pool: %w", err), databaseURL, cfg.ConnConfig.Password)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, redact(connectError(cfg.ConnConfig, err), databaseURL, cfg.ConnConfig.Password)
	}
	return &Store{pool: pool, opts: opts}, nil
}

// connectCreating connects to the database cfg names, creating it first if
// the server says it does not exist.
func connectCreating(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg.Copy())
	if err == nil {
		return conn, nil
	}
	if sqlState(err) != "3D000" { // invalid_catalog_name: database does not exist
		return nil, connectError(cfg, err)
	}
	if err := createDatabase(ctx, cfg); err != nil {
		return nil, err
	}
	conn, err = pgx.ConnectConfig(ctx, cfg.Copy())
	if err != nil {
		return nil, connectError(cfg, err)
	}
	return conn, nil
}

// createDatabase creates cfg.Database through the maintenance database on the
// same server, tolerating a concurrent creator.
func createDatabase(ctx context.Context, cfg *pgx.ConnConfig) error {
	mcfg := cfg.Copy()
	mcfg.Database = maintenanceDB
	conn, err := pgx.ConnectConfig(ctx, mcfg)
	if err != nil {
		return fmt.Errorf("store: database %q does not exist and cannot be created: %w", cfg.Database, connectError(mcfg, err))
	}
	defer closeConn(conn)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{cfg.Database}.Sanitize())
	switch sqlState(err) {
	case "":
		return nil
	case "42P04", // duplicate_database: created since we looked
		"23505": // unique_violation: PostgreSQL's documented race between two CREATE DATABASE
		return nil
	default:
		return fmt.Errorf("store: create database %q: %w", cfg.Database, err)
	}
}

// DropDatabase drops the database databaseURL names, if it exists,
// disconnecting its sessions; [Open] creates it again. It exists for demos
// that start clean, and refuses a database whose name does not end in
// "_demo", so it cannot be pointed at real data by mistake.
func DropDatabase(ctx context.Context, databaseURL string) error {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return redact(fmt.Errorf("store: parse database URL: %w", err), databaseURL)
	}
	if !strings.HasSuffix(cfg.Database, "_demo") {
		return fmt.Errorf("store: refusing to drop database %q: only databases named *_demo are dropped", cfg.Database)
	}
	mcfg := cfg.Copy()
	mcfg.Database = maintenanceDB
	if mcfg.ConnectTimeout == 0 {
		mcfg.ConnectTimeout = DefaultConnectTimeout
	}
	conn, err := pgx.ConnectConfig(ctx, mcfg)
	if err != nil {
		return redact(connectError(mcfg, err), databaseURL, cfg.Password)
	}
	defer closeConn(conn)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{cfg.Database}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("store: drop database %q: %w", cfg.Database, err)
	}
	return nil
}

// migrateSchema applies the embedded migrations. tern takes an advisory lock
// around both its version-table setup and the migrations themselves.
func migrateSchema(ctx context.Context, conn *pgx.Conn) error {
	m, err := newMigrator(ctx, conn)
	if err != nil {
		return err
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	return nil
}

// newMigrator returns a migrator over conn with the embedded migrations
// loaded.
func newMigrator(ctx context.Context, conn *pgx.Conn) (*migrate.Migrator, error) {
	m, err := migrate.NewMigrator(ctx, conn, versionTable)
	if err != nil {
		return nil, fmt.Errorf("store: migrate: %w", err)
	}
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("store: migrate: %w", err)
	}
	if err := m.LoadMigrations(sub); err != nil {
		return nil, fmt.Errorf("store: migrate: load: %w", err)
	}
	return m, nil
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

// connectError explains a failed connection attempt. When the server never
// answered, it says so and how to get one.
func connectError(cfg *pgx.ConnConfig, err error) error {
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// The server answered: authentication, permissions, too many clients…
		return fmt.Errorf("store: connect to PostgreSQL at %s as %q: %w", addr, cfg.User, err)
	}
	return fmt.Errorf("store: cannot reach PostgreSQL at %s: %w; start one "+
		`(e.g. "pg_ctlcluster 15 main start", or "docker run -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:16") `+
		"or set DATABASE_URL", addr, err)
}

// sqlState returns err's SQLSTATE, or "" when err is nil or not from the
// server.
func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// Close closes the connection pool, waiting for connections in use to be
// released.
func (s *Store) Close() { s.pool.Close() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// Pool returns the store's connection pool, for benchmarks and tests.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Options returns the options the store runs with, defaults filled in.
func (s *Store) Options() Options { return s.opts }

// RedactURL returns databaseURL with any password replaced by "xxxxx", for
// logs. Keyword/value strings ("host=… password=…") are redacted too.
func RedactURL(databaseURL string) string {
	out := databaseURL
	for _, secret := range passwords(databaseURL) {
		out = strings.ReplaceAll(out, secret, "xxxxx")
	}
	return out
}

// passwords returns the passwords databaseURL appears to contain, raw and
// percent-encoded, longest first.
func passwords(databaseURL string) []string {
	var out []string
	add := func(s string) {
		if s != "" {
			out = append(out, s)
		}
	}
	if u, err := url.Parse(databaseURL); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			add(p)
			add(url.QueryEscape(p))
			add(url.PathEscape(p))
		}
		if q, err := url.ParseQuery(u.RawQuery); err == nil {
			add(q.Get("password"))
		}
	} else if err == nil {
		if q, err := url.ParseQuery(u.RawQuery); err == nil {
			add(q.Get("password"))
		}
	}
	// keyword/value form, and anything that did not parse as a URL
	for _, f := range strings.Fields(databaseURL) {
		if v, ok := strings.CutPrefix(f, "password="); ok {
			add(strings.Trim(v, `'`))
		}
	}
	// user:password@ in a URL that url.Parse rejected
	if i := strings.Index(databaseURL, "://"); i >= 0 {
		authority := databaseURL[i+3:]
		if j := strings.IndexAny(authority, "/?"); j >= 0 {
			authority = authority[:j]
		}
		if at := strings.LastIndex(authority, "@"); at >= 0 {
			if c := strings.Index(authority[:at], ":"); c >= 0 {
				add(authority[c+1 : at])
			}
		}
	}
	// longest first, so a password containing another is replaced whole
	slices.SortStableFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// redactedError is an error whose message has had secrets removed; the cause
// stays reachable through Unwrap for errors.Is and errors.As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact removes the passwords in databaseURL, and any further secrets, from
// err's message.
func redact(err error, databaseURL string, secrets ...string) error {
	msg := err.Error()
	all := append(passwords(databaseURL), secrets...)
	changed := false
	for _, s := range all {
		if s != "" && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
			changed = true
		}
	}
	if !changed {
		return err
	}
	return &redactedError{msg: msg, err: err}
}
