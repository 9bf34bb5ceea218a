package auth

import (
	"context"
	"crypto/sha256"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"
)

// Defaults and limits of [Options].
const (
	DefaultCacheTTL  = 5 * time.Second
	MaxCacheTTL      = time.Minute
	DefaultCacheSize = 1024
)

// Options configure [Tokens]. The zero value means the defaults.
type Options struct {
	// CacheTTL is how long a valid answer of [Tokens.Check] or
	// [Tokens.Lookup] is reused without asking the database: the longest a
	// token revoked elsewhere keeps working here. Defaults to 5s; at most 1m;
	// negative turns the cache off (every check queries).
	CacheTTL time.Duration
	// CacheSize is how many tokens the cache holds. Defaults to 1024.
	CacheSize int
	// Now is the cache's clock. Defaults to time.Now; tests inject one.
	Now func() time.Time
}

// Validate reports a field out of range, wrapping [ErrInvalidOption].
func (o Options) Validate() error {
	_, err := o.withDefaults()
	return err
}

func (o Options) withDefaults() (Options, error) {
	switch {
	case o.CacheTTL > MaxCacheTTL:
		return o, fmt.Errorf("%w: CacheTTL %v is longer than %v (revocation would take too long)", ErrInvalidOption, o.CacheTTL, MaxCacheTTL)
	case o.CacheSize < 0:
		return o, fmt.Errorf("%w: CacheSize %d is negative", ErrInvalidOption, o.CacheSize)
	}
	if o.CacheTTL == 0 {
		o.CacheTTL = DefaultCacheTTL
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// Tokens is the token table. It is safe for concurrent use.
type Tokens struct {
	pool  *pgxpool.Pool
	opts  Options
	cache cache
}

//go:embed migrations/*.sql
var migrationFiles embed.FS

// VersionTable is the table tern records this package's schema version in.
const VersionTable = "parity_auth_schema_version"

// Open migrates the token tables in the database pool connects to and returns
// [Tokens] over the pool. The caller keeps the pool and closes it after it
// has stopped using the Tokens.
func Open(ctx context.Context, pool *pgxpool.Pool, opts Options) (*Tokens, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("auth: migrate: %w", err)
	}
	defer conn.Release()
	m, err := migrate.NewMigrator(ctx, conn.Conn(), VersionTable)
	if err != nil {
		return nil, fmt.Errorf("auth: migrate: %w", err)
	}
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("auth: migrate: %w", err)
	}
	if err := m.LoadMigrations(sub); err != nil {
		return nil, fmt.Errorf("auth: migrate: load: %w", err)
	}
	// tern refuses a database whose version is beyond the embedded
	// migrations (a newer binary migrated it) instead of migrating down.
	if err := m.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("auth: migrate: %w", err)
	}
	t := &Tokens{pool: pool, opts: opts}
	t.cache = cache{m: map[cacheKey]cacheEntry{}, ttl: opts.CacheTTL, size: opts.CacheSize, now: opts.Now}
	return t, nil
}

// Options returns the options t runs with, defaults filled in.
func (t *Tokens) Options() Options { return t.opts }

// Create makes a token with a name no active token has and returns it. The
// token is not stored and cannot be shown again: print it once.
func (t *Tokens) Create(ctx context.Context, name string, role Role) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	if !role.Valid() {
		return "", fmt.Errorf("%w %q: want viewer, operator or ingest", ErrInvalidRole, role)
	}
	tok, sum := newToken()
	_, err := t.pool.Exec(ctx, `INSERT INTO api_tokens (name, role, hash) VALUES ($1, $2, $3)`, name, string(role), sum[:])
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "api_tokens_active_name" {
		return "", fmt.Errorf("%w: %q", ErrExists, name)
	}
	if err != nil {
		return "", fmt.Errorf("auth: create token %q: %w", name, err)
	}
	return tok, nil
}

// Revoke revokes the active token with the name. This Tokens refuses it at
// once; others within their [Options.CacheTTL].
func (t *Tokens) Revoke(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	var id int64
	err := t.pool.QueryRow(ctx, `UPDATE api_tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL RETURNING id`, name).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	if err != nil {
		return fmt.Errorf("auth: revoke token %q: %w", name, err)
	}
	t.cache.forget(id)
	return nil
}

// List returns every token ever created, active and revoked, by name and then
// creation time.
func (t *Tokens) List(ctx context.Context) ([]Token, error) {
	rows, err := t.pool.Query(ctx, `SELECT id, name, role, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY name, created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("auth: list tokens: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Token, error) {
		var tk Token
		var role string
		var used, revoked *time.Time
		if err := r.Scan(&tk.ID, &tk.Name, &role, &tk.CreatedAt, &used, &revoked); err != nil {
			return Token{}, err
		}
		tk.Role = Role(role)
		if used != nil {
			tk.LastUsedAt = *used
		}
		if revoked != nil {
			tk.RevokedAt = *revoked
		}
		return tk, nil
	})
	if err != nil {
		return nil, fmt.Errorf("auth: list tokens: %w", err)
	}
	return out, nil
}

// Check returns who token belongs to, or [ErrInvalidToken] when it is
// malformed, unknown or revoked. Other errors mean the database could not
// answer.
func (t *Tokens) Check(ctx context.Context, token string) (Principal, error) {
	if !WellFormed(token) {
		return Principal{}, ErrInvalidToken
	}
	sum := sha256.Sum256([]byte(token))
	key := cacheKey{hash: sum}
	if p, ok := t.cache.get(key); ok {
		return p, nil
	}
	p, err := t.find(ctx, `hash = $1`, sum[:])
	if err != nil {
		return Principal{}, err
	}
	t.cache.put(key, p)
	return p, nil
}

// Lookup returns who the active token with the id belongs to, or
// [ErrInvalidToken] when it is unknown or revoked. The collector uses it to
// keep a dashboard session only as long as the token it was opened with.
func (t *Tokens) Lookup(ctx context.Context, id int64) (Principal, error) {
	if id <= 0 {
		return Principal{}, ErrInvalidToken
	}
	key := cacheKey{id: id}
	if p, ok := t.cache.get(key); ok {
		return p, nil
	}
	p, err := t.find(ctx, `id = $1`, id)
	if err != nil {
		return Principal{}, err
	}
	t.cache.put(key, p)
	return p, nil
}

// find returns the active token matching where, recording its use to the
// minute.
func (t *Tokens) find(ctx context.Context, where string, arg any) (Principal, error) {
	q := `WITH t AS (
	SELECT id, name, role, last_used_at FROM api_tokens WHERE ` + where + ` AND revoked_at IS NULL
), used AS (
	UPDATE api_tokens a SET last_used_at = now() FROM t
	WHERE a.id = t.id AND (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute')
)
SELECT id, name, role FROM t`
	var p Principal
	var role string
	err := t.pool.QueryRow(ctx, q, arg).Scan(&p.TokenID, &p.Name, &role)
	if errors.Is(err, pgx.ErrNoRows) {
		return Principal{}, ErrInvalidToken
	}
	if err != nil {
		return Principal{}, fmt.Errorf("auth: check token: %w", err)
	}
	p.Role = Role(role)
	return p, nil
}

// cache remembers valid answers for a short time. A key is a token's hash
// (Check) or its id (Lookup).
type cache struct {
	mu   sync.Mutex
	m    map[cacheKey]cacheEntry
	ttl  time.Duration
	size int
	now  func() time.Time
}

type cacheKey struct {
	hash [sha256.Size]byte
	id   int64
}

type cacheEntry struct {
	p       Principal
	expires time.Time
}

func (c *cache) get(k cacheKey) (Principal, bool) {
	if c.ttl < 0 {
		return Principal{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		return Principal{}, false
	}
	if !c.now().Before(e.expires) {
		delete(c.m, k)
		return Principal{}, false
	}
	return e.p, true
}

func (c *cache) put(k cacheKey, p Principal) {
	if c.ttl < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.size {
		for key, e := range c.m { // drop the expired first
			if !now.Before(e.expires) {
				delete(c.m, key)
			}
		}
		for key := range c.m { // still full: drop any one
			if len(c.m) < c.size {
				break
			}
			delete(c.m, key)
		}
	}
	c.m[k] = cacheEntry{p: p, expires: now.Add(c.ttl)}
}

// forget drops every answer about the token with the id.
func (c *cache) forget(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		if e.p.TokenID == id {
			delete(c.m, k)
		}
	}
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
