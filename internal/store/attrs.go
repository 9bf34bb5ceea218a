package store

import (
	"encoding/json"
	"maps"
	"sync"
)

// maxCachedAttrs bounds the attrs documents an [attrsCache] holds: about as
// many as 100 experiments at the default segment cap.
const maxCachedAttrs = 10_000

// attrsCache memoizes the decoding of segments' attrs, which the dashboard
// reads on every request and which encoding/json decodes slowly (about 7
// allocations for a one-attribute object). It is keyed by the JSON text, which
// determines the map, so an entry can never go stale. When full, it starts
// over.
type attrsCache struct {
	mu sync.RWMutex
	m  map[string]map[string]string
}

// decode returns the attrs object raw as a map the caller owns.
func (c *attrsCache) decode(raw []byte) (map[string]string, error) {
	c.mu.RLock()
	a, ok := c.m[string(raw)]
	c.mu.RUnlock()
	if !ok {
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, err
		}
		c.mu.Lock()
		if c.m == nil || len(c.m) >= maxCachedAttrs {
			c.m = make(map[string]map[string]string)
		}
		c.m[string(raw)] = a
		c.mu.Unlock()
	}
	return maps.Clone(a), nil
}
