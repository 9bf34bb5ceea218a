package collector

import (
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/parityhq/parity/internal/controller"
)

// verdictCacheSize bounds the cached verdicts; past it the cache starts
// over.
const verdictCacheSize = 4096

// verdictCache keeps gate verdicts between changes, so a page or an API
// call that asks again for a verdict nothing has changed under costs one
// lookup instead of a read of every unit's counts.
//
// A verdict is a function of the experiment's counts, latencies and minutes
// since its anchor, of the gate spec it is judged under and of the anchor,
// and of nothing else but the minute retention's horizon (the change
// detector reads only kept minutes). Its key holds all of them: the
// experiment's version ([store.Store.Versions], moved by every Apply that
// writes anything of it, in the same transaction, and never repeated), the
// spec and the anchor as JSON, and the current hour (the horizon moves on
// the hour). A cached verdict therefore can never be stale: new counts, a
// spec change or another anchor is another key. A look without an anchor
// starts at a whole minute (the window's start rounded up, which selects
// exactly the minutes the exact start selects), so repeated looks within a
// minute share a key.
type verdictCache struct {
	mu sync.Mutex
	m  map[string]GateView
}

// verdictKey returns the key of the verdict on experiment name, at version,
// under g from anchor, in mode (which evaluation: the page's, the
// overview's), as of now.
func verdictKey(mode, name string, version int64, g GateSpecView, anchor controller.Anchor, now time.Time) string {
	spec, _ := json.Marshal(g)       // plain fields always marshal
	where, _ := json.Marshal(anchor) // likewise
	return mode + "\x00" + name + "\x00" + strconv.FormatInt(version, 10) + "\x00" + string(spec) + "\x00" + string(where) +
		"\x00" + now.UTC().Truncate(time.Hour).Format(time.RFC3339)
}

func (c *verdictCache) get(key string) (GateView, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	return v, ok
}

func (c *verdictCache) put(key string, v GateView) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= verdictCacheSize {
		c.m = make(map[string]GateView)
	}
	c.m[key] = v
}

// len returns the number of cached verdicts.
func (c *verdictCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// ceilMinute returns t rounded up to a whole minute.
func ceilMinute(t time.Time) time.Time {
	if m := t.Truncate(time.Minute); m.Before(t) {
		return m.Add(time.Minute)
	}
	return t
}
