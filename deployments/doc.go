// Package deployments holds Parity's deployment files: the Dockerfile for the
// collector and verifier images, a Docker Compose file and Kubernetes
// manifests (kustomize). It has no code; its test checks every file against
// the flags and environment variables the built binaries accept. See
// README.md.
package deployments
