// Package rollout describes a staged migration rollout as data and answers,
// without any I/O, three questions about it: which migration stage a user
// gets ([Evaluate]), whether the rollout may move from one position to
// another ([Transition]), and where to send it in an emergency ([Kill]).
//
// It is the pure core of Parity's rollout controller and of the OpenFeature
// provider applications use to read the rollout flag, so it imports only the
// standard library and [github.com/parityhq/parity/pkg/envelope].
//
// # Plans, steps and state
//
// A [Plan] is a sequence of [Step]s. Each step gives one stage to one
// [Audience]: explicit targeting keys (the testing group "123", "456"),
// attribute rules (country in IN, US; plan = pro) and a percentage of
// everyone else. A [State] says how many steps have been applied. A user's
// stage at State{Step: n} is the stage of the latest of steps[0..n-1] whose
// audience contains the user; a user no applied step targets has the plan's
// [Plan.Base] stage ("off" when empty). So a step never takes anyone out of
// a stage: users it does not target keep what earlier steps gave them.
//
// # Guarantees
//
//   - Sticky: a user's percentage bucket depends only on the experiment and
//     the targeting key ([Bucket]), so the same user gets the same answer in
//     every process, in every language that implements the documented hash,
//     and after restarts.
//   - Monotonic: raising a step's percentage from 5 to 25 keeps the first 5%
//     in, because a user is in when its bucket is below percent×100. Buckets
//     are shared by all steps of a plan, so a later, smaller percentage of a
//     later stage (10% rampdown after 50% live) picks users from the earlier,
//     larger one.
//   - No data loss: [Plan.Validate] and [Transition] refuse any rollout in
//     which a user could leave rampdown or complete for a stage in which the
//     old store is authoritative (off, freeze, dualwrite, shadow) — the old
//     store has missed writes by then — and any rollout in which someone
//     reaches shadow or later before everyone has been dual-writing, since
//     writes made outside dualwrite never reach the new store.
//   - Evaluate never panics and does not allocate; it trusts the plan to be
//     valid, so validate a plan once when it is loaded.
package rollout
