package flagprovider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/open-feature/go-sdk/openfeature"

	"github.com/parityhq/parity/pkg/rollout"
)

// Backoff between attempts to open the bucket and start the watch.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 2 * time.Second
	// opTimeout bounds one JetStream API request (opening the bucket).
	opTimeout = 5 * time.Second
)

var (
	errDisconnected = errors.New("nats connection lost")
	errReconnected  = errors.New("nats connection re-established")
	errWatchClosed  = errors.New("watch closed by the client library")
)

// start launches the watcher. p.mu must be held.
func (p *Provider) start() {
	ctx, cancel := context.WithCancel(context.Background())
	r := &runState{cancel: cancel, done: make(chan struct{}), firstSync: make(chan struct{})}
	p.run = r
	p.cause = errors.New("waiting for the bucket's current values")
	// Register before the goroutine starts so no status change is missed.
	status := p.nc.StatusChanged()
	go func() {
		defer close(r.done)
		defer p.nc.RemoveStatusListener(status)
		p.watchLoop(ctx, r, status)
	}()
}

// watchLoop keeps a watch on the bucket open while the connection is up,
// until ctx is done.
func (p *Provider) watchLoop(ctx context.Context, r *runState, status <-chan nats.Status) {
	backoff := minBackoff
	for ctx.Err() == nil {
		if st := p.nc.Status(); st != nats.CONNECTED {
			p.notSynced(r, fmt.Errorf("%w: connection is %s", errDisconnected, st))
			select {
			case <-status:
			case <-ctx.Done():
				return
			}
			continue
		}
		err := p.watch(ctx, r, status)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errDisconnected):
			p.notSynced(r, err)
			continue // wait for the connection above
		case errors.Is(err, errReconnected):
			p.notSynced(r, err)
			backoff = minBackoff
			continue // resynchronise at once
		}
		if p.isSynced() {
			backoff = minBackoff // it worked for a while: retry quickly
		}
		p.notSynced(r, err)
		t := time.NewTimer(jitter(backoff))
		select {
		case <-t.C:
		case <-status: // re-check the connection at once
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// jitter returns d ± 20%, so many applications do not retry in step.
func jitter(d time.Duration) time.Duration {
	return d - d/5 + rand.N(2*d/5+1)
}

// watch opens the bucket and applies its entries until the watch ends, the
// connection changes, or ctx is done.
func (p *Provider) watch(ctx context.Context, r *runState, status <-chan nats.Status) error {
	js, err := jetstream.New(p.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	octx, ocancel := context.WithTimeout(ctx, opTimeout)
	kv, err := js.KeyValue(octx, p.opts.Bucket)
	ocancel()
	if err != nil {
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			return fmt.Errorf("bucket %s does not exist yet (the collector creates it): %w", p.opts.Bucket, err)
		}
		return fmt.Errorf("open bucket %s: %w", p.opts.Bucket, err)
	}
	// The watch's subscription lives until wctx is cancelled.
	wctx, wcancel := context.WithCancel(ctx)
	w, err := kv.WatchAll(wctx)
	if err != nil {
		wcancel()
		return fmt.Errorf("watch bucket %s: %w", p.opts.Bucket, err)
	}
	defer stopWatch(r, w, wcancel)

	replaying := true
	var changed []string // flags changed during the replay
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-status:
			switch st := p.nc.Status(); st {
			case nats.CONNECTED:
				// We missed the disconnect (status events are dropped
				// when the listener is slow): the watch may have missed
				// entries, so start a new one.
				return errReconnected
			case nats.DRAINING_SUBS, nats.DRAINING_PUBS:
				// Still delivering.
			default:
				return fmt.Errorf("%w: connection is %s", errDisconnected, st)
			}
		case e, ok := <-w.Updates():
			if !ok {
				return errWatchClosed
			}
			if e == nil {
				replaying = false
				p.markSynced(r, changed)
				changed = nil
				p.writeCache()
				continue
			}
			flag, ok := p.apply(e)
			if !ok {
				continue
			}
			if replaying {
				if !slices.Contains(changed, flag) {
					changed = append(changed, flag)
				}
				continue
			}
			p.changed(flag)
			if len(w.Updates()) == 0 { // coalesce bursts into one write
				p.writeCache()
			}
		}
	}
}

// stopWatch ends a watch without waiting for NATS. KeyWatcher.Stop would
// also delete the watch's consumer, a JetStream request that blocks for its
// whole timeout (5s) while the connection is down; cancelling the watch's
// context makes nats.go unsubscribe and delete it on its own goroutine
// instead. The updates are drained until nats.go closes the channel, so a
// delivery blocked on a full channel can finish.
func stopWatch(r *runState, w jetstream.KeyWatcher, cancel context.CancelFunc) {
	cancel()
	r.wg.Go(func() {
		for range w.Updates() {
		}
	})
}

func (p *Provider) isSynced() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.synced
}

// markSynced records that the watch delivered the current values: it emits
// CONFIGURATION_CHANGED for the flags changed during the replay, then READY
// if the provider was not in sync.
func (p *Provider) markSynced(r *runState, changed []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run != r {
		return
	}
	if p.initialized && len(changed) > 0 {
		p.emitLocked(openfeature.ProviderConfigChange, openfeature.ProviderEventDetails{
			Message:     "rollout documents changed",
			FlagChanges: changed,
		})
	}
	was := p.synced
	p.synced = true
	p.cause = nil
	p.stale.Store(false)
	if !r.firstDone {
		r.firstDone = true
		close(r.firstSync)
	}
	if !was {
		p.log.Info("flagprovider: in sync with the bucket", "bucket", p.opts.Bucket, "flags", len(*p.flags.Load()))
		if p.initialized {
			p.emitLocked(openfeature.ProviderReady, openfeature.ProviderEventDetails{
				Message: "watching bucket " + p.opts.Bucket,
			})
		}
	}
}

// notSynced records why the provider is not in sync; on the transition from
// in sync it logs a warning and emits STALE.
func (p *Provider) notSynced(r *runState, cause error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run != r {
		return
	}
	same := p.cause != nil && cause != nil && p.cause.Error() == cause.Error()
	p.cause = cause
	if p.synced {
		p.synced = false
		p.stale.Store(true)
		p.log.Warn("flagprovider: not in sync with the bucket; serving the last documents, marked stale",
			"bucket", p.opts.Bucket, "cause", cause.Error())
		if p.initialized {
			p.emitLocked(openfeature.ProviderStale, openfeature.ProviderEventDetails{
				Message: "not in sync with bucket " + p.opts.Bucket + ": " + cause.Error(),
			})
		}
		return
	}
	if !same {
		p.log.Info("flagprovider: waiting for the bucket", "bucket", p.opts.Bucket, "cause", cause.Error())
	}
}

// changed emits CONFIGURATION_CHANGED for a flag applied while in sync.
func (p *Provider) changed(flag string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.initialized {
		p.emitLocked(openfeature.ProviderConfigChange, openfeature.ProviderEventDetails{
			Message:     "rollout document changed",
			FlagChanges: []string{flag},
		})
	}
}

// apply applies one KV entry and reports the flag whose document changed.
func (p *Provider) apply(e jetstream.KeyValueEntry) (string, bool) {
	key := e.Key()
	switch op := e.Operation(); op {
	case jetstream.KeyValueDelete, jetstream.KeyValuePurge:
		p.mu.Lock()
		defer p.mu.Unlock()
		cur := (*p.flags.Load())[key]
		if cur == nil || cur.deleted {
			return "", false
		}
		p.storeLocked(key, newEntry(cur.doc, true))
		p.log.Warn("flagprovider: rollout entry deleted from the bucket; keeping its last document, marked stale",
			"flag", key, "op", op.String(), "revision", cur.doc.Revision)
		// The value served does not change, so no event.
		return "", false
	case jetstream.KeyValuePut:
	default:
		p.log.Warn("flagprovider: ignored bucket entry with an unknown operation", "key", key, "op", op.String())
		return "", false
	}
	doc, err := rollout.ParseDocument(e.Value())
	if err != nil {
		p.log.Warn("flagprovider: ignored invalid rollout document; serving the previous one",
			"key", key, "problem", describe(err))
		return "", false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return key, p.applyDocLocked(key, doc, false)
}

// applyDocLocked applies doc as key's document unless its revision is not
// above the one applied. p.mu must be held.
func (p *Provider) applyDocLocked(key string, doc rollout.Document, deleted bool) bool {
	if doc.Flag != key {
		p.log.Warn("flagprovider: ignored rollout document stored under another flag's key",
			"key", key, "document_flag", doc.Flag, "revision", doc.Revision)
		return false
	}
	cur := (*p.flags.Load())[key]
	if cur != nil && doc.Revision <= cur.doc.Revision {
		if doc.Revision < cur.doc.Revision {
			p.log.Warn("flagprovider: ignored rollout document older than the one applied",
				"flag", key, "revision", doc.Revision, "applied_revision", cur.doc.Revision)
		}
		return false
	}
	p.storeLocked(key, newEntry(doc, deleted))
	return true
}

// storeLocked replaces the flag set with a copy holding e for key.
func (p *Provider) storeLocked(key string, e *flagEntry) {
	next := maps.Clone(*p.flags.Load())
	if next == nil {
		next = flagSet{}
	}
	next[key] = e
	p.flags.Store(&next)
	p.gen.Add(1)
}

// describe explains why a document is invalid without quoting targeting
// keys or attribute values: problems with explicit users or rule values are
// reported by field path only, and JSON type errors without the value.
func describe(err error) string {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return fmt.Sprintf("JSON field %q has the wrong type (want %s)", typ.Field, typ.Type)
	}
	var fields []string
	walk(err, func(e error) {
		if fe, ok := e.(*rollout.FieldError); ok {
			if strings.Contains(fe.Field, "users[") || strings.Contains(fe.Field, ".in[") {
				fields = append(fields, fe.Field+": invalid (value not logged)")
			} else {
				fields = append(fields, fe.Field+": "+fe.Problem)
			}
		}
	})
	if len(fields) > 0 {
		return strings.Join(fields, "; ")
	}
	return err.Error()
}

// walk calls fn on err and everything it wraps.
func walk(err error, fn func(error)) {
	if err == nil {
		return
	}
	fn(err)
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			walk(e, fn)
		}
	case interface{ Unwrap() error }:
		walk(u.Unwrap(), fn)
	}
}
