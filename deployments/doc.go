// Package deployments holds Parity's deployment files: the Dockerfile for the
// collector and verifier images, a Docker Compose file and Kubernetes
// manifests (kustomize). It has no code. Its tests build the kustomization
// with kustomize's library and decode every object strictly into its
// k8s.io/api type, load compose.yaml with compose-go, and check every file
// against the flags and environment variables the built binaries accept.
//
// It is a Go module of its own (deployments/go.mod), so that these heavy,
// test-only libraries stay out of the dependency graph of the main module
// and of what applications import. Run its tests with
// `cd deployments && go test ./...` (make test does). See README.md.
package deployments
