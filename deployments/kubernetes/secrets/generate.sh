#!/bin/sh
# Writes the env files the kustomization's secretGenerator reads, with fresh
# random values (openssl rand), readable by you only:
#
#   sh deployments/kubernetes/secrets/generate.sh
#
# postgres.env   POSTGRES_PASSWORD         (the bundled PostgreSQL)
# database.env   DATABASE_URL              (the same password, for Parity)
# tokens.env     PARITY_INGEST_TOKENS      (POST /api/v1/pairs)
#                PARITY_OPERATOR_TOKENS    (empty: rule and gate changes off)
#                PARITY_VIEWER_TOKENS      (readers: people, Argo Rollouts, CI)
#                PARITY_SESSION_SECRET     (signs dashboard sessions)
#
# The files are git-ignored and never shipped: `kubectl apply -k` fails until
# they exist, and the collector refuses placeholder or weak values. An
# existing file is left alone; delete it to make a new one. To use your own
# secret store instead, create Secrets with these keys and drop the
# secretGenerator from kustomization.yaml.
set -eu
dir=$(dirname "$0")
umask 077
rand() { openssl rand -hex "$1"; }
if [ ! -e "$dir/postgres.env" ]; then
	pw=$(rand 24)
	printf 'POSTGRES_PASSWORD=%s\n' "$pw" >"$dir/postgres.env"
	printf 'DATABASE_URL=postgres://parity:%s@postgres:5432/parity?sslmode=disable\n' "$pw" >"$dir/database.env"
	echo "wrote $dir/postgres.env and $dir/database.env"
fi
if [ ! -e "$dir/tokens.env" ]; then
	{
		printf 'PARITY_INGEST_TOKENS=%s\n' "$(rand 24)"
		printf 'PARITY_OPERATOR_TOKENS=\n'
		printf 'PARITY_VIEWER_TOKENS=%s\n' "$(rand 24)"
		printf 'PARITY_SESSION_SECRET=%s\n' "$(rand 32)"
	} >"$dir/tokens.env"
	echo "wrote $dir/tokens.env"
fi
