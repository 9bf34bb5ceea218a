// Package argo tests the Argo Rollouts integration documented in
// docs/promotion.md the way Argo Rollouts v1.10.1 runs it: the YAML is
// decoded strictly with Argo's own Go types, Argo's validation runs on it,
// Argo's web metric provider asks a live collector, and Argo's own analysis
// controller (on fake Kubernetes clients) replays sequences of the
// collector's real answers under the documented limits.
//
// It is a Go module of its own so that Argo's dependencies never enter
// Parity's: nothing imports it, Parity's go.mod does not change for it, and
// it holds only tests. Its go.mod copies Argo's Kubernetes replacements and
// builds Parity with the Prometheus client Argo compiles against.
package argo
