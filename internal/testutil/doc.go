// Package testutil starts the real services Parity's tests run against: an
// embedded NATS server with JetStream on a random loopback port, and a fresh
// PostgreSQL database that is dropped when the test ends. It also provides
// [Eventually], which waits for an asynchronous expectation within a time
// window instead of sleeping.
//
// It is imported only from _test.go files and e2e tests.
package testutil
