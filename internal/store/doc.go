// Package store is Parity's PostgreSQL storage. It keeps what the verifiers
// count (per-minute [Count]s and their hourly and daily rollups, mismatch signatures,
// latency histograms, flag-variant counts, divergence samples, dead letters
// and the stream sequences each batch consumed) and the per-experiment
// configuration people edit (diff rules, segment definitions, redaction
// rules, promotion gate specs, rollouts with their audit log) and the
// reconciliation sweeps. Nothing in it knows HTTP or NATS.
//
// Writers: the verifier writes through [Store.Apply] and reads its
// configuration with [Store.AllRules], [Store.AllRedactions],
// [Store.AllSegmentConfigs] and [Store.EnsureSegmentConfig]; the rollout
// controller through [Store.CreateRollout], [Store.UpdateRollout] and
// [Store.SetRolloutBaseline]; the collector saves configuration with
// [Store.SaveRules], [Store.SaveSegmentConfig], [Store.SaveRedaction] and
// [Store.SaveGateSpec], runs sweeps ([Store.CreateSweep], [Store.ClaimSweep],
// [Store.CommitSweepChunk]) and retention ([Store.Prune],
// [Store.PruneApplied], [Store.PruneMinutes], which runs [Store.Compact]). Readers: [Store.Experiments], [Store.Operations],
// [Store.Segments], [Store.Latencies], [Store.Series], [Store.Overview],
// [Store.Variants], [Store.Signatures], [Store.Samples], [Store.Versions] and friends (the
// overview pages through [Store.ExperimentPage] and reads a page's worth with
// [Store.OverviewOf], [Store.SegmentsOf] and [Store.GateSpecsOf]).
// [DropDatabase] drops a demo's database (only one named *_demo).
//
// The counters a count carries are [report.Counters]: the store maps each to
// a column (counterColumns) and spells them nowhere else.
//
// Guarantees:
//
//   - [Open] creates the database if it does not exist (tolerating a concurrent
//     creator) and migrates the schema to the version embedded in this package.
//     Migrations run under a PostgreSQL advisory lock, so any number of
//     processes may call Open at once.
//   - [Store.Apply] is atomic: a [Batch] is written in one transaction, all of
//     it or none of it.
//   - Counts are exact. Apply adds each [Count] and [SignatureCount] to what
//     is stored with an upsert; nothing is sampled or estimated. An
//     experiment's totals in [Experiment] are kept in the same transaction as
//     its per-minute counts. A/A counts ([report.Counters.AAPairs]) are kept beside the
//     others and are in neither [report.Counters.Pairs] nor the experiment's totals.
//   - Latency histograms are exact too: each [Latency] is merged into the
//     stored histograms of its (experiment, operation, segment, hour), so a
//     stored histogram is the [report.Histogram.Merge] of every histogram
//     applied to it. They are kept per hour and per day, apart from the
//     counts, so [Store.Latencies] widens its window to whole hours.
//   - Beside the per-minute counts, Apply keeps in the same transaction
//     their rollup per hour (count_hours) and each experiment's pairs per
//     hour (experiment_hours, the overview's series). [Store.Compact] (which
//     [Store.PruneMinutes] runs first) writes, for each whole UTC day before
//     today, the daily rollups (count_days, latency_days) and the variant
//     and signature counts' rollups per hour and per day, and moves the
//     experiment's rolled_to past it in the same transaction, under the
//     experiment's row lock, which Apply takes too; Apply adds a later write
//     to a minute or hour before rolled_to to those rollups itself. So every
//     rollup row is the exact sum of the rows it covers, and Apply writes
//     per flush one minute row and one hour row per unit, as before the
//     daily rollups. Reads split a window into the parts the coarsest
//     rollup that answers them can serve: whole days from the days (before
//     rolled_to), the whole hours left at its ends from the hours, only the
//     ragged minutes at its ends from the minutes ([Store.Segments],
//     [Store.Series] with a step of whole hours or days, [Store.Overview],
//     [Store.Variants], [Store.Signatures], [Store.PatternStats],
//     [Store.Latencies], which may also read a ragged end as its day less
//     the hours outside the window). The sums are those of the minutes,
//     whichever rollup answers and whether or not the compactor has run.
//   - Every Apply that writes anything of an experiment moves its version
//     ([Store.Versions]) in the same transaction; versions never repeat, so
//     what is computed from an experiment's counts can be cached under its
//     version without ever being stale.
//   - Reads of a window that runs to now ([Store.Segments],
//     [Store.Signatures], [Store.Latencies], [Store.Series]) keep what they
//     summed over sealed hours, those that ended more than an hour before
//     the database's clock, in the store (at most 64 MiB, least recently
//     used first), and read from PostgreSQL only the hours since, in one
//     statement that also reads the experiment's sealed_version. Apply
//     moves that version whenever it writes anything of the experiment into
//     an hour before the database's current one, and a read uses what it
//     kept only under the version its statement sees, reading again
//     otherwise: an answer is exactly the one that statement's snapshot
//     holds, as without the cache. (This rests on no Apply transaction
//     staying open for an hour: Apply gives itself at most 10 minutes.)
//   - With [Options.MinuteRetention] set, [Store.PruneMinutes] deletes the
//     per-minute counts before the start of the hour that long ago (and the
//     per-minute variant and signature counts only before rolled_to as
//     well, where their hours are written), and every read answers what lies
//     before that horizon from the rollups, widening a window edge there to
//     its whole hour: an answer is the same before and after the deletion.
//     [Store.Minutes] returns only kept minutes.
//   - Names are bounded by the policy of [segment.Admission]; the store
//     supplies what is admitted already and the locks.
//   - Each experiment admits at most the cap of its segment definition
//     ([SegmentConfig], versioned like rules: [Store.SaveSegmentConfig],
//     [Store.EnsureSegmentConfig] stores a first one exactly once however
//     many verifiers race) distinct segments, or [Options.SegmentCap] while
//     it has none.
//     A segment once admitted stays admitted; segments that arrive once the
//     cap is reached are folded into [OtherSegment], for counts, signature
//     counts, latencies and samples alike. Admission is serialised per experiment by a row lock on the
//     experiment, so concurrent verifiers never admit more than the cap.
//   - At most [Options.ExperimentCap] experiments and, per experiment,
//     [Options.OperationCap] operations are admitted; the pairs, samples,
//     signatures, latencies and variant counts of further ones are written
//     under [OtherExperiment] or the experiment's [OtherOperation], and
//     [Store.Folded] counts the pairs so folded. New names are admitted under
//     one advisory lock, so concurrent writers never admit more than the
//     caps; known names cost no round trip.
//   - At most [Options.SamplesPerKey] samples, the newest by time, are kept per
//     (experiment, operation, segment).
//   - A batch records the JetStream stream sequences it consumed
//     ([Batch.Stream], [Batch.Seqs]) in the same transaction, so a verifier can
//     ask [Store.Applied] which redelivered messages are already counted. No
//     message is counted twice, even when two verifiers race: a batch whose
//     sequences were all recorded before (a retry after a lost commit reply,
//     or messages another verifier counted first) writes nothing and fails
//     with [ErrAllApplied], and a batch that overlaps an earlier one only in
//     part writes nothing and fails with [ErrAlreadyApplied]. Batches that
//     carry sequences of one stream are written one at a time (an advisory
//     lock per stream, held to commit), so racing claims never deadlock.
//   - Each signature's pattern set is stored once per experiment, not per
//     count; [Store.Signatures] and [Store.PatternStats] join it back.
//   - Diff rules are versioned per experiment: 1, 2, 3… with no gap or
//     repeat, whatever the concurrency of [Store.SaveRules]; every version is
//     kept. Of gate specs only the latest is kept. Rules and gate specs may
//     exist for an experiment that has no pairs yet; such an experiment is not
//     listed by [Store.Experiments] until Apply writes something for it.
//   - Strings that PostgreSQL cannot store (invalid UTF-8, NUL bytes) are
//     repaired with U+FFFD rather than failing the batch, so one bad envelope
//     cannot block a verifier.
//
// All times are stored as timestamptz and returned in UTC. Errors start with
// "store: " and wrap their cause; an unknown experiment or sample is reported
// with [ErrNotFound], a query argument out of range with [ErrInvalidQuery].
// Errors never contain the password of the database URL.
package store
