// Package collector is the Parity server people and tools talk to: the
// dashboard, the JSON API and the HTTP ingest, served by Echo. [Start] wires
// the whole system: the PostgreSQL store, a NATS connection (or, with no NATS
// URL, an embedded NATS server with JetStream), in-process verifier workers,
// and optionally demo traffic, so one process is the whole system on a laptop.
//
// Handlers are thin over [internal/store] and [pkg/report]. Read endpoints
// reject bad query parameters with a 400 naming the parameter and unknown
// experiments with a 404. Mutating endpoints require a bearer token; with no
// token configured they are refused, never open.
package collector
