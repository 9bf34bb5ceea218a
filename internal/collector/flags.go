package collector

import (
	"hash/fnv"
	"sort"
	"strconv"
	"sync"

	"github.com/parityhq/parity/pkg/rollout"
)

// flagTable holds the rollout documents this collector serves over OFREP,
// by flag key. The controller replaces them from PostgreSQL on every tick and
// after every change it makes, so every collector of a cluster serves what
// the database says within one tick.
type flagTable struct {
	mu      sync.RWMutex
	docs    map[string]rollout.Document
	version string // changes whenever any document's revision does
}

func newFlagTable() *flagTable { return &flagTable{docs: map[string]rollout.Document{}, version: "0"} }

// Set replaces every document.
func (t *flagTable) Set(docs []rollout.Document) {
	m := make(map[string]rollout.Document, len(docs))
	for _, d := range docs {
		m[d.Flag] = d
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := fnv.New64a()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write(strconv.AppendInt(nil, m[k].Revision, 10))
		h.Write([]byte{0})
	}
	t.mu.Lock()
	t.docs, t.version = m, strconv.FormatUint(h.Sum64(), 36)
	t.mu.Unlock()
}

// Put adds or replaces one document, unless the table has a newer revision of
// it.
func (t *flagTable) Put(d rollout.Document) {
	t.mu.RLock()
	docs := make([]rollout.Document, 0, len(t.docs)+1)
	for k, v := range t.docs {
		if k != d.Flag {
			docs = append(docs, v)
		} else if v.Revision > d.Revision {
			d = v
		}
	}
	t.mu.RUnlock()
	t.Set(append(docs, d))
}

// get returns the document of flag.
func (t *flagTable) get(flag string) (rollout.Document, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	d, ok := t.docs[flag]
	return d, ok
}

// all returns every document, by flag key, and a version string that
// changes whenever any of them does (for ETags).
func (t *flagTable) all() ([]rollout.Document, string) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]rollout.Document, 0, len(t.docs))
	for _, d := range t.docs {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Flag < out[j].Flag })
	return out, t.version
}
