// Package migration runs the old and the new implementation of a read or a
// write side by side, as a migration stage says, and publishes each pair of
// outcomes so that Parity's verifiers can prove, per user segment, that the
// new path returns what the old one does.
//
// A [Reader] or [Writer] wraps one operation. Its stage comes, on every call,
// from an OpenFeature string flag evaluated with the call's evaluation
// context:
//
//	stage      reads served by   reads compared   writes (authoritative first)
//	off        Old               no               Old
//	freeze     Old               no               refused: ErrWriteFrozen
//	dualwrite  Old               no               Old, then New
//	shadow     Old               New against Old  Old, then New
//	live       New               Old against New  New, then Old
//	rampdown   New               no               New, then Old
//	complete   New               no               New
//
// A flag that cannot be evaluated, or whose value is not one of these, gives
// the [DefaultStage] (off unless set) and is counted in [Stats.FlagErrors];
// the pair's Flag records the variant and the reason "ERROR".
//
// # Guarantees
//
// The caller gets exactly what the authoritative path returned: the same
// value and the same error, and its panic, re-raised with the same value.
// Nothing the other path does reaches the caller: its errors, panics and
// timeouts are recovered, published and counted.
//
// A compared read runs the other path concurrently on a goroutine of its own
// and returns as soon as the authoritative path does; the other path's
// latency never adds to the caller's. Those goroutines are pooled: a call
// appends its other path to a queue, which a dispatching goroutine hands,
// every 250µs while calls come, to pooled goroutines that are idle, starting
// a new one only when none is; a pooled goroutine that takes the last idle
// place starts one to wait in its place, one idle for 100ms exits, and the
// dispatcher exits after 50ms without a call. So a steady stream of calls
// starts no goroutine and wakes no thread per call (a wake-up costs the
// caller a futex call, several µs at the tail); the other path starts
// within about a tick of the call, up to a millisecond where the runtime's
// timers are that coarse, and its latency is timed from its own start. The memory a compared read needs is
// allocated by the pooled goroutine of the call before it, so the caller's
// path allocates nothing either while calls keep coming. The other path is
// bounded by [Timeout] (1s by default), a deadline kept by one timer shared
// by every call rather than a timer each: at the deadline its side is
// recorded as "timeout" even if the function ignores its context. Such a function cannot be killed; its
// goroutine is abandoned and lives until the function returns, and
// [MaxInFlight] bounds how many may pile up. Parity's own goroutines all end
// by the deadline, or go back to the pool.
//
// Writes run in order on the caller's goroutine, so both are done when Write
// returns; when the authoritative write fails, the other is skipped and the
// pair says so (status "skipped"). The second write's latency does add to
// the caller's; its context carries the [Timeout] deadline.
//
// Building, comparing ([Config.Compare]), encoding and publishing a pair
// happen off the caller's goroutine. [Publisher.Publish] must never block;
// a refused pair is counted in [Stats.Dropped]. A result that cannot be
// encoded as JSON is published as an error of its side with a message that
// says so, and counted in [Stats.MarshalErrors]; it never changes what the
// caller gets.
//
// In every pair, Control is the old path and Candidate is the new path,
// whichever of them is authoritative.
//
// # Sampling
//
// [Sampling] publishes one user in n, chosen by a hash of the targeting key,
// so a user's pairs are all in the sample or all out; [WithSampling]
// overrides the ratio for one call. A read left out of the sample does not
// run the other path at all: that is what sampling saves. A write left out
// of the sample still writes both paths (the data must stay correct) but
// publishes nothing.
//
// # Users and segments
//
// A pair's User.Key is the targeting key, and its User.Attrs are the
// evaluation context's attributes whose values are strings, booleans or
// numbers, formatted as text. Attributes of other types or with names the
// envelope does not allow are left out rather than failing the call; values
// are cut to the envelope's limits. The transaction context
// (openfeature.WithTransactionContext) is merged in, the call's context
// winning.
//
// # Results are shared
//
// In a compared call, Parity keeps the authoritative result returned to the
// caller and encodes it after the call. Treat such results as read-only, or
// set [SnapshotResult] to encode them before the call returns. Old and New
// receive the same request, concurrently in a compared read: they must not
// modify it.
//
// # Counters
//
// [Reader.Stats] and [Writer.Stats] return [Stats]; every call in a comparing
// stage ends up in exactly one of Published, Dropped and SampledOut. Package
// parityprom exports them to Prometheus, so that this package does not
// import the Prometheus client: it imports only the standard library, the
// OpenFeature SDK, go-cmp and the envelope package.
package migration
