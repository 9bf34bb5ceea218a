package flagprovider

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/parityhq/parity/pkg/rollout"
)

// cacheFormat identifies the cache file's layout; a file with another
// format is not read.
const cacheFormat = "parity-flagprovider-cache/v1"

// cacheFile is the JSON layout of [Options.CacheFile].
type cacheFile struct {
	Format    string       `json:"format"`
	Bucket    string       `json:"bucket"`
	WrittenAt time.Time    `json:"written_at"`
	Flags     []cachedFlag `json:"flags"`
}

type cachedFlag struct {
	Document rollout.Document `json:"document"`
	Deleted  bool             `json:"deleted,omitempty"`
}

// writeCache writes the current documents to the cache file if they changed
// since the last write. Only the watcher goroutine calls it.
func (p *Provider) writeCache() {
	if p.opts.CacheFile == "" {
		return
	}
	p.mu.Lock()
	gen := p.gen.Load()
	set := *p.flags.Load()
	written := p.cacheGen
	p.mu.Unlock()
	if gen == written {
		return
	}
	c := cacheFile{Format: cacheFormat, Bucket: p.opts.Bucket, WrittenAt: time.Now().UTC()}
	for _, k := range slices.Sorted(maps.Keys(set)) {
		e := set[k]
		c.Flags = append(c.Flags, cachedFlag{Document: e.doc, Deleted: e.deleted})
	}
	b, err := json.Marshal(c)
	if err == nil {
		err = writeFileAtomic(p.opts.CacheFile, b)
	}
	if err != nil {
		p.log.Warn("flagprovider: cannot write the cache file", "file", p.opts.CacheFile, "err", err)
		return
	}
	p.mu.Lock()
	p.cacheGen = gen
	p.mu.Unlock()
}

// writeFileAtomic replaces path with data: readers see the old file or the
// new one, never a part.
func writeFileAtomic(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// loadCacheLocked applies the cache file's documents under the usual
// revision rule and returns how many flags the provider then serves. p.mu
// must be held.
func (p *Provider) loadCacheLocked() (int, error) {
	b, err := os.ReadFile(p.opts.CacheFile)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var c cacheFile
	if err := json.Unmarshal(b, &c); err != nil {
		return 0, fmt.Errorf("decode: %s", describe(err))
	}
	if c.Format != cacheFormat {
		return 0, fmt.Errorf("format %q, want %q", c.Format, cacheFormat)
	}
	if c.Bucket != p.opts.Bucket {
		return 0, fmt.Errorf("written for bucket %q, not %q", c.Bucket, p.opts.Bucket)
	}
	var bad []string
	for _, f := range c.Flags {
		if err := f.Document.Validate(); err != nil {
			bad = append(bad, f.Document.Flag+": "+describe(err))
			continue
		}
		p.applyDocLocked(f.Document.Flag, f.Document, f.Deleted)
	}
	if len(bad) > 0 {
		p.log.Warn("flagprovider: ignored invalid documents in the cache file", "file", p.opts.CacheFile, "problems", strings.Join(bad, "; "))
	}
	return len(*p.flags.Load()), nil
}
