package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// maxCachedRolled bounds the experiments a [rolledCache] holds; when full it
// starts over.
const maxCachedRolled = 10_000

// rolledCache remembers each experiment's rolled_to as a read last saw it,
// so that a read plans its statement without a round trip of its own to
// fetch it first. A remembered value is only a guess: the statement checks
// it in its own snapshot ([rolledGuard]) and answers nothing when it is
// wrong, and the read then fetches the value and runs again
// ([Store.readRolled]). An entry can therefore be stale (the compactor
// moved rolled_to, or the experiment was deleted and written again) but
// never wrong in an answer.
type rolledCache struct {
	mu sync.RWMutex
	m  map[string]time.Time // zero: never compacted
}

func (c *rolledCache) get(experiment string) time.Time {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[experiment]
}

func (c *rolledCache) put(experiment string, r time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedRolled {
		c.m = make(map[string]time.Time)
	}
	c.m[experiment] = r
}

func (c *rolledCache) forget(experiment string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, experiment)
}

// rolledGuard returns a condition (" AND …") that holds only while the
// rolled_to of the experiment $1 names is r (zero: NULL, never compacted),
// as the statement that contains it sees the experiments: in the same
// snapshot as the rows it reads. Uncorrelated, it is evaluated once per
// statement (a one-time filter over a primary-key lookup).
func rolledGuard(p *params, r time.Time) string {
	var v *time.Time
	if !r.IsZero() {
		v = &r
	}
	return " AND (SELECT rolled_to FROM experiments WHERE name = $1) IS NOT DISTINCT FROM " + p.add(v) + "::timestamptz"
}

// maxRolledRetries bounds how many times [Store.readRolled] runs a read
// again because rolled_to moved under it; the compactor moves it at most
// once a day per experiment, so a second run is already rare.
const maxRolledRetries = 5

// readRolled runs read, a statement planned for experiment's rolled_to r
// whose every part carries [rolledGuard] for r, with r as last seen, and
// returns its error. read returns how many rows its statement returned;
// it must start its answer afresh on every call. One round trip answers
// when the guess is right and the window has rows. When the statement
// returns nothing, the window may be empty or the guess wrong: readRolled
// fetches rolled_to (which also tells an unknown experiment, for which it
// returns an error wrapping [ErrNotFound]) and runs read again if it
// differs from the guess.
func (s *Store) readRolled(ctx context.Context, experiment string, read func(r time.Time) (int, error)) error {
	r := s.rolled.get(experiment)
	for range maxRolledRetries {
		n, err := read(r)
		if err != nil || n > 0 {
			return err
		}
		var cur *time.Time
		err = s.pool.QueryRow(ctx, `SELECT rolled_to FROM experiments WHERE name = $1`, experiment).Scan(&cur)
		if errors.Is(err, pgx.ErrNoRows) {
			s.rolled.forget(experiment)
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		now := time.Time{}
		if cur != nil {
			now = cur.UTC()
		}
		s.rolled.put(experiment, now)
		if now.Equal(r) {
			return nil // the guess held: the window is empty
		}
		r = now
	}
	return fmt.Errorf("store: rolled_to of %q moved %d times during one read", experiment, maxRolledRetries)
}
