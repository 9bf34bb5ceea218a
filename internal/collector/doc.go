// Package collector is the Parity server people and tools talk to: the
// dashboard, the JSON API and the HTTP ingest, served by Echo. [Start] wires
// the whole system: the PostgreSQL store, a NATS connection (or, with no NATS
// URL, an embedded NATS server with JetStream), in-process verifier workers,
// and optionally demo traffic, so one process is the whole system on a laptop.
//
// The collector runs the rollout controller (package
// [github.com/parityhq/parity/internal/controller]) and serves what it
// decides: the rollout API maps the controller's errors to status codes
// (invalid 400, not found 404, refused or changed meanwhile 409), and the
// OFREP endpoints (ofrep.go) serve the documents it hands to the flag table.
//
// Handlers are thin over [internal/store], [internal/controller] and
// [pkg/report]. Each dashboard page (pages.go) reads what it needs and has a
// small function build its typed view model (view.go), tested without HTTP;
// charts come from [internal/charts]. A page gives one verdict: the rollout
// step's gate while a rollout judges one, the experiment's gate otherwise,
// and every coloured rate follows it with its limit beside it. The overview
// is paged in the database, so a page costs about the same however many
// experiments there are, and pages read counts from the coarsest rollup that
// answers them (charts of more than 8 hours in buckets of hours or days,
// their first bucket whole), so they cost about the same however long the
// history. Gate verdicts (the page's, the overview's, the public gate's
// other than a rollout step's) are cached between changes under a key
// holding the experiment's store version, the spec, the anchor and the
// hour, so a cached verdict is never stale (verdictcache.go). Read endpoints
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
