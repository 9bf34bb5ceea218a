// Package collector is the Parity server people and tools talk to: the
// dashboard, the JSON API and the HTTP ingest, served by Echo. [Start] wires
// the whole system: the PostgreSQL store, a NATS connection (or, with no NATS
// URL, an embedded NATS server with JetStream), in-process verifier workers,
// and optionally demo traffic, so one process is the whole system on a laptop.
//
// The collector also runs the rollout controller (controller.go): every
// change of a rollout, an operator's or its own, is checked by
// [rollout.Transition], written to PostgreSQL with its audit entry under a
// compare-and-set on the rollout's revision (so several collectors may run
// it against one database), and published to the NATS KV bucket
// [rollout.KVBucket] that Parity's OpenFeature provider watches, and to the
// OFREP endpoints (ofrep.go). docs/rollout.md describes the rules.
//
// Handlers are thin over [internal/store] and [pkg/report]. Read endpoints
// reject bad query parameters with a 400 naming the parameter and unknown
// experiments with a 404.
//
// Every route has an access rule (routeAccess in auth.go; a route without one
// is refused): pages and reads need the viewer role, changes the operator
// role, HTTP ingest the ingest role, OFREP flag evaluation any role, and
// /healthz, /readyz, /metrics and /static are open. A request proves its role with a bearer token (a flag
// token or one from package auth) or a dashboard session opened at /login; a
// request without either reads as an anonymous viewer only when
// [Options.AnonymousViewers] allows it, and never changes anything. Forms
// that change state are protected against CSRF, failed sign-ins are slowed
// per client address, and tokens and session cookies are never logged.
// docs/security.md has the details.
package collector
