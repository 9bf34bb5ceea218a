// Package flagger tests the Flagger integration documented in
// docs/promotion.md the way Flagger v1.44.0 runs it: the Canary is decoded
// strictly with Flagger's own Go type, and Flagger's own webhook client
// (pkg/controller.CallWebhook) calls the gate's confirm-promotion and
// rollback webhooks on a live collector, whose answers are read with
// Flagger's rules.
//
// It is a Go module of its own so that Flagger's dependencies never enter
// Parity's: nothing imports it, Parity's go.mod does not change for it, and
// it holds only tests.
package flagger
