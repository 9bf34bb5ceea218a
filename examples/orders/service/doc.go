// Package service is the orders example service, importable so that tests
// and other programs run it in-process: [Setup] wires two PostgreSQL
// databases (the old schema and the new), Parity's migration helpers, an
// OpenFeature flag holding each user's stage, and a publisher of pairs to
// NATS JetStream; [App.Handler] serves the HTTP API; [Traffic] plays users
// of every segment against it.
//
// A request's user is its X-User-ID header (the flag's targeting key), with
// the attributes country (X-Country) and plan (X-Plan). The reads are
// compared in the shadow and live stages, the status writes in the
// dualwrite, shadow, live and rampdown stages.
//
// Two kinds of bug can be planted. [Options.SeedBugs] seeds the new database
// with two backfill bugs (order 4's total, order 5 missing); without it both
// databases hold the same orders, and no pair diverges. [Options.BugCountry]
// and [App.SetBugCountry] break the new read path for the users of one
// country, at run time.
package service
