// Package flagprovider is Parity's OpenFeature provider for Go: it lets an
// application read a migration stage ("off", "freeze", "dualwrite",
// "shadow", "live", "rampdown", "complete"; see
// [github.com/parityhq/parity/pkg/envelope.Stage]) as an OpenFeature string
// flag, decided by the rollout the collector publishes.
//
// The collector writes one [rollout.Document] per flag, as JSON, to the NATS
// JetStream key-value bucket [rollout.KVBucket], keyed by the flag key. A
// [Provider] watches the whole bucket through the application's own
// *nats.Conn (it never polls for values), keeps the last valid document of
// every flag in memory, and answers [Provider.StringEvaluation] with
// [rollout.Decide]: the targeting key of the evaluation context is the user,
// the other attributes are converted with [rollout.StringAttrs]. The value
// and the variant are the stage; the reason is the decision's OpenFeature
// reason (TARGETING_MATCH, SPLIT or DEFAULT); the flag metadata carries
// "revision" (int64), "step" (int64, the number of steps applied),
// "matched_step" (int64, the index of the step that gave the stage, -1 for
// the base stage; the same keys as OFREP's metadata), "stale"
// (bool), "deleted" (bool), "status" and "experiment" (strings) and "detail"
// ([rollout.Decision.String], e.g. "SPLIT steps[4] percent"). A flag the
// provider has no document for resolves to the default value with
// FLAG_NOT_FOUND; a Parity flag evaluated as a boolean, number or object
// resolves to the default value with TYPE_MISMATCH. Evaluation is safe for
// concurrent use, takes no lock (it reads an immutable map through an
// atomic pointer) and does no I/O.
//
// # Guarantees
//
//   - Sticky: a user's percentage bucket depends only on the plan's
//     experiment and the targeting key ([rollout.Bucket]), so every process,
//     every provider instance and every restart gives a user the same stage
//     for the same document.
//   - Monotonic percentages: raising a step from 5% to 25% keeps the first
//     5% in; the provider only delivers documents, the guarantee is the
//     core's.
//   - Revision ordering: a document whose [rollout.Document.Revision] is not
//     above the last one applied for its flag is ignored (a lower one with a
//     warning), so a delayed, replayed or restored write never moves a
//     rollout back in time. A document whose Flag is not its key, or that
//     [rollout.ParseDocument] refuses, is ignored with a warning naming the
//     key and the problem, and the previous document keeps being served.
//   - Deletion keeps the last state: a KV delete or purge of a key does not
//     remove the flag; its last document keeps being served with metadata
//     stale=true and deleted=true, until a document with a revision above
//     the last applied one is put (so revisions must keep growing across a
//     delete). No configuration-change event is emitted for a deletion,
//     because no value changes. The revision floor survives Shutdown and a
//     later Init, and documents read from the cache file obey it too.
//   - Nothing is invented: every answer is derived from a document received
//     from the bucket or read from [Options.CacheFile]; there are no built-in
//     stages.
//   - Logs name flag keys, revisions and the fields of invalid documents,
//     never targeting keys or attribute values (a validation problem about
//     an explicit user or a rule value is logged by field path only).
//
// # Staleness and events
//
// The provider is in sync when its watch has delivered the bucket's current
// values (the watcher's nil marker) and the connection is up; [Provider.Stale]
// is the opposite. When the connection reports anything but CONNECTED
// (learned from nc.StatusChanged; no connection handler is installed), the
// provider emits PROVIDER_STALE, Stale returns true and every evaluation
// carries stale=true, while the last documents keep being served. When the
// connection is back, the provider opens a new watch; once that watch has
// delivered the current values it emits PROVIDER_CONFIGURATION_CHANGED for
// the flags that changed meanwhile, then PROVIDER_READY, and Stale returns
// false. While in sync, every applied document emits
// PROVIDER_CONFIGURATION_CHANGED with FlagChanges naming its flag; changes
// reach evaluations as fast as the watch delivers them (milliseconds).
//
// Events go to a buffered channel of [EventBufferSize]. Sending never blocks
// the watcher: when the buffer is full the oldest event is dropped (and
// counted by [Provider.DroppedEvents]), so the newest state always gets
// through.
//
// # Initialisation, the cache file and a missing bucket
//
// [Provider.Init] (or InitWithContext) starts the watcher and waits up to
// [Options.InitTimeout] for the bucket's current values. It returns nil as
// soon as they are in. Otherwise:
//
//   - If [Options.CacheFile] holds documents (written atomically after every
//     change by an earlier run), they are applied under the same revision
//     rule and Init returns nil, so SetProviderAndWait does not fail an
//     application that can serve its last state; Stale is true and every
//     evaluation carries stale=true at once. The SDK marks the provider READY
//     when Init returns nil, on another goroutine than the one handling the
//     provider's events, so an event sent from Init could be handled before
//     that READY and be overwritten; the provider therefore emits
//     PROVIDER_STALE 100ms after Init returns, which moves the SDK's state to
//     STALE (unless the watch has caught up by then).
//   - Without a cache, Init returns an error wrapping [ErrNotSynced] and the
//     cause. The SDK puts the provider in ERROR state, which does not stop
//     evaluations: a flag without a document resolves to the application's
//     default value with FLAG_NOT_FOUND.
//
// Either way the watcher keeps trying in the background and emits
// PROVIDER_READY once in sync.
//
// The provider never creates the bucket; the collector owns it. Until it
// exists the provider retries opening it with a capped exponential backoff
// (100ms doubling to 2s, with jitter), is not in sync (Stale is true) and
// serves only what it already had (nothing, or the cache). Once the bucket
// appears the watch starts and the provider becomes ready as above.
//
// [Provider.Shutdown] stops the watcher and every goroutine the provider
// started and removes its status listener; the documents stay in memory, and
// a later Init starts again from them. It does not wait for NATS: the watch's
// ephemeral consumer is deleted by nats.go on its own goroutine (which, while
// the connection is down, gives up after nats.go's 5s request timeout), and
// the server removes it anyway once inactive.
//
// This package imports only the standard library, nats.go, the OpenFeature
// SDK and [rollout], so applications that embed it do not link a database
// driver, a web framework or a NATS server (TestDependencies checks it).
package flagprovider
