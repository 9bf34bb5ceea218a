# Parity's everyday commands. `make help` lists them.
SHELL   := bash
GO      ?= go
PKGS    ?= ./...
BENCH   ?= .
# Test-only Go modules with their own dependencies (Argo Rollouts, Flagger),
# kept out of Parity's go.mod.
MODULES := e2e/promotion/argo e2e/promotion/flagger

.PHONY: help demo example example-node rollout-demo reconcile-example test test-alloc test-node test-short bench bench-soak fuzz fmt lint tidy-check build

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

# Each serving target has its own ports, database and NATS data, so runs
# never see each other's experiments; tools/serve.sh refuses a taken port,
# builds first with progress, and says when the dashboard answers.
PG_URL            ?= postgres://postgres@127.0.0.1:5432
DEMO_PORT         ?= 8080
DEMO_NATS_PORT    ?= 4223
DEMO_DATABASE_URL ?= $(PG_URL)/parity_demo?sslmode=disable
EXAMPLE_PORT      ?= 8090
EXAMPLE_APP_PORT  ?= 8091
EXAMPLE_NATS_PORT ?= 4233
ROLLOUT_PORT      ?= 8070
ROLLOUT_APP_PORT  ?= 8071

demo: ## the whole system (embedded NATS, verifiers, dashboard) with demo traffic on :8080, started clean (KEEP=1 keeps the last run's data)
	@$(if $(KEEP),,rm -rf .parity/demo)
	@MAKE_TARGET=demo GO=$(GO) tools/serve.sh "make demo" "$(DEMO_PORT) $(DEMO_NATS_PORT)" ./cmd/collector \
	  "$(DEMO_PORT):bin/collector --demo $(if $(KEEP),,--demo-fresh) --addr 127.0.0.1:$(DEMO_PORT) --embedded-nats-addr 127.0.0.1:$(DEMO_NATS_PORT) --data-dir .parity/demo --database-url $(DEMO_DATABASE_URL)"

rollout-demo: ## the closed-loop rollout scenario, narrated, with its dashboard on :8070 (fresh databases every run)
	@MAKE_TARGET=rollout-demo GO=$(GO) tools/serve.sh "make rollout-demo" "$(ROLLOUT_PORT) $(ROLLOUT_APP_PORT)" ./examples/rollout \
	  "$(ROLLOUT_PORT):bin/rollout --addr 127.0.0.1:$(ROLLOUT_PORT) --app-addr 127.0.0.1:$(ROLLOUT_APP_PORT)"

example: ## the orders example service with traffic on :8091, and Parity's dashboard on :8090 (database parity_example)
	@MAKE_TARGET=example GO=$(GO) tools/serve.sh "make example" "$(EXAMPLE_PORT) $(EXAMPLE_APP_PORT) $(EXAMPLE_NATS_PORT)" "./cmd/collector ./examples/orders" \
	  "$(EXAMPLE_PORT):bin/collector --addr 127.0.0.1:$(EXAMPLE_PORT) --embedded-nats-addr 127.0.0.1:$(EXAMPLE_NATS_PORT) --data-dir .parity/example --database-url $(PG_URL)/parity_example?sslmode=disable" \
	  "$(EXAMPLE_APP_PORT):bin/orders --addr 127.0.0.1:$(EXAMPLE_APP_PORT) --nats-url nats://127.0.0.1:$(EXAMPLE_NATS_PORT) --traffic 50 --create-stream=false"

reconcile-example: ## a sweep of every row of the orders example finds its backfill bugs, also in rows its traffic never reads → http://127.0.0.1:8080
	$(GO) run ./examples/reconcile

example-node: ## the Node.js orders example (examples/node-orders) with traffic, and Parity's dashboard at http://127.0.0.1:8080
	cd clients/node && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run build
	cd examples/node-orders && { [ -d node_modules ] || npm ci --no-audit --no-fund; }
	@echo "Parity dashboard at http://127.0.0.1:8080 (experiment orders-node), Node orders service at http://127.0.0.1:8082 (Ctrl-C stops both)"
	@trap 'kill 0' INT TERM EXIT; \
	$(GO) run ./cmd/collector --addr 127.0.0.1:8080 & \
	until (exec 3<>/dev/tcp/127.0.0.1/4223) 2>/dev/null; do sleep 0.5; done; \
	cd examples/node-orders && node server.mjs --traffic 50; wait

# The packages whose tests promise zero allocations (testing.AllocsPerRun).
ALLOC_PKGS ?= ./pkg/diff/ ./pkg/publish/ ./pkg/rollout/ ./pkg/migration/

test: ## run every test (needs PostgreSQL on 127.0.0.1:5432, Node.js 20 and nats-server; see .ci/run)
	$(GO) test -race -count=1 -timeout 45m $(PKGS)
	$(MAKE) --no-print-directory test-alloc
	cd deployments && $(GO) test -count=1 ./...
	cd e2e/promotion/argo && $(GO) test -count=1 -timeout 20m ./...
	cd e2e/promotion/flagger && $(GO) test -count=1 -timeout 20m ./...
	$(MAKE) test-node

test-alloc: ## the allocation tests, without -race (the race detector skews allocation counts)
	@out=$$($(GO) test -count=1 -run 'Alloc' -v $(ALLOC_PKGS) 2>&1); rc=$$?; \
	echo "$$out" | grep -E '^(--- |ok|FAIL|panic)' ; \
	if echo "$$out" | grep -q 'no tests to run'; then echo "test-alloc: a package in ALLOC_PKGS has no allocation test"; exit 1; fi; \
	if echo "$$out" | grep -q -- '--- SKIP'; then echo "test-alloc: an allocation test skipped"; exit 1; fi; \
	exit $$rc

test-node: ## the Node.js client's tests (clients/node; installs its locked dependencies when missing)
	cd clients/node && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm test

test-short: ## the tests that need no PostgreSQL (go test -short: those that do skip, and only under -short)
	$(GO) test -short -count=1 $(PKGS)

build: ## build the binaries into bin/
	$(GO) build -o bin/ ./cmd/...

bench: ## run the benchmarks (one package at a time: -p 1) and print each figure as a ratio against its reference measured in the same run
	$(GO) test -p 1 -run='^$$' -bench='$(BENCH)' -benchmem -benchtime=1s -timeout 30m $$($(GO) list ./pkg/... | grep -v /pgsource) | tee bench.txt
	$(GO) test -run='^$$' -bench='B13|B14' -benchmem -benchtime=3x -timeout 30m ./pkg/reconcile/pgsource/ | tee -a bench.txt
	$(GO) test -run='^$$' -bench='B6' -benchmem -benchtime=2000x -timeout 30m ./internal/store/ | tee -a bench.txt
	$(GO) test -run='^$$' -bench='B10$$' -benchmem -benchtime=200x -timeout 30m ./internal/store/ | tee -a bench.txt
	$(GO) test -run='^$$' -bench='B12$$' -benchtime=1x -timeout 30m ./internal/store/ | tee -a bench.txt
	$(GO) test -run='^$$' -bench='ApplyContention' -benchtime=300x -timeout 30m ./internal/store/ | tee -a bench.txt
	$(GO) test -run='^$$' -bench='VerifierContention' -benchtime=4000x -timeout 30m ./e2e/ | tee -a bench.txt
	$(GO) test -run='^$$' -bench='B1$$' -benchmem -benchtime=100000x -timeout 30m ./e2e/ | tee -a bench.txt
	$(GO) test -run='^$$' -bench='B7' -benchmem -benchtime=100000x -timeout 30m ./e2e/ | tee -a bench.txt
	$(GO) test -run='^$$' -bench='OverviewScale' -benchmem -benchtime=200x -timeout 30m ./internal/collector/ | tee -a bench.txt
	$(GO) test -run='^$$' -bench='B11$$' -benchmem -benchtime=40x -timeout 30m ./internal/collector/ | tee -a bench.txt
	$(GO) run ./tools/benchratio bench.txt

# PARITY_SOAK_MINUTES shortens the soak for a smoke run (the reference is
# taken at a sixth of it).
PARITY_SOAK_MINUTES ?= 30

bench-soak: ## B12's memory half: the collector binary at 5,000 pairs/s for 30 minutes (PARITY_SOAK_MINUTES), its RSS at the end against at 5 minutes
	set -o pipefail; PARITY_SOAK_MINUTES=$(PARITY_SOAK_MINUTES) $(GO) test -run='^$$' -bench='B12RSS' -benchtime=1x -v -timeout 3h ./e2e/ | tee bench-soak.txt
	$(GO) run ./tools/benchratio bench-soak.txt

fuzz: ## fuzz the envelope decoders (against the previous decoder), the differ (its guided parse against parsing alone, its lockstep and fused comparisons against the walk) and the gate for 30s each
	$(GO) test -run='^$$' -fuzz='FuzzDecode$$' -fuzztime=30s ./pkg/envelope/
	$(GO) test -run='^$$' -fuzz=FuzzDecodeMessage -fuzztime=30s ./pkg/envelope/
	$(GO) test -run='^$$' -fuzz=FuzzValues -fuzztime=30s ./pkg/diff/
	$(GO) test -run='^$$' -fuzz=FuzzParseLike -fuzztime=30s ./pkg/diff/
	$(GO) test -run='^$$' -fuzz=FuzzFused -fuzztime=30s ./pkg/diff/
	$(GO) test -run='^$$' -fuzz=FuzzEvaluate -fuzztime=30s ./pkg/report/

fmt: ## format the code
	gofmt -w .

lint: tidy-check ## gofmt, go vet and a tidy go.mod (the main module and the test modules: deployments/, e2e/promotion/*)
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	@for m in deployments $(MODULES); do (cd $$m && $(GO) vet ./...) || exit 1; done

tidy-check: ## fail when go mod tidy would change go.mod or go.sum (of the main module or a test module)
	@for d in . deployments $(MODULES); do \
		cp $$d/go.mod /tmp/parity.go.mod && cp $$d/go.sum /tmp/parity.go.sum; \
		(cd $$d && $(GO) mod tidy); \
		diff -q $$d/go.mod /tmp/parity.go.mod >/dev/null && diff -q $$d/go.sum /tmp/parity.go.sum >/dev/null || { echo "go mod tidy changes $$d/go.mod or go.sum"; cp /tmp/parity.go.mod $$d/go.mod; cp /tmp/parity.go.sum $$d/go.sum; exit 1; }; \
	done
