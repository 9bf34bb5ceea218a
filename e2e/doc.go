// Package e2e runs the real system end to end: an embedded NATS server with
// JetStream on a random port, a fresh PostgreSQL database, the collector with
// two verifier workers on separate connections, and pairs published through
// the Go hook. Its tests assert exact counts through the public JSON API.
package e2e
