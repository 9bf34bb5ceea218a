# Parity's everyday commands. `make help` lists them.
SHELL   := bash
GO      ?= go
PKGS    ?= ./...
BENCH   ?= .

.PHONY: help demo example example-node rollout-demo reconcile-example test test-alloc test-node test-short bench fuzz fmt lint tidy-check build

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

demo: ## run the whole system (embedded NATS, verifiers, dashboard) with demo traffic
	@echo "Parity demo: dashboard at http://127.0.0.1:8080 (Ctrl-C to stop)"
	$(GO) run ./cmd/collector --demo --addr 127.0.0.1:8080

rollout-demo: ## the closed-loop rollout scenario, narrated, with the dashboard at http://127.0.0.1:8080
	$(GO) run ./examples/rollout

example: ## the orders example service with traffic, and Parity's dashboard at http://127.0.0.1:8080
	@echo "Parity dashboard at http://127.0.0.1:8080, orders service at http://127.0.0.1:8081 (Ctrl-C stops both)"
	@trap 'kill 0' INT TERM EXIT; \
	$(GO) run ./cmd/collector --addr 127.0.0.1:8080 & \
	until (exec 3<>/dev/tcp/127.0.0.1/4223) 2>/dev/null; do sleep 0.5; done; \
	$(GO) run ./examples/orders --traffic 50 --create-stream=false; wait

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
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	$(MAKE) --no-print-directory test-alloc
	cd deployments && $(GO) test -count=1 ./...
	$(MAKE) test-node

test-alloc: ## the allocation tests, without -race (the race detector skews allocation counts)
	@out=$$($(GO) test -count=1 -run 'Alloc' -v $(ALLOC_PKGS) 2>&1); rc=$$?; \
	echo "$$out" | grep -E '^(--- |ok|FAIL|panic)' ; \
	if echo "$$out" | grep -q 'no tests to run'; then echo "test-alloc: a package in ALLOC_PKGS has no allocation test"; exit 1; fi; \
	if echo "$$out" | grep -q -- '--- SKIP'; then echo "test-alloc: an allocation test skipped"; exit 1; fi; \
	exit $$rc

test-node: ## the Node.js client's tests (clients/node; installs its locked dependencies when missing)
	cd clients/node && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm test

test-short: ## the unit tests only (no end-to-end tests)
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /e2e)

build: ## build the binaries into bin/
	$(GO) build -o bin/ ./cmd/...

bench: ## run the benchmarks and print each figure as a ratio against its reference measured in the same run
	$(GO) test -run='^$$' -bench='$(BENCH)' -benchmem -benchtime=1s -timeout 30m $$($(GO) list ./pkg/... | grep -v /pgsource) | tee bench.txt
	$(GO) test -run='^$$' -bench='B13|B14' -benchmem -benchtime=3x -timeout 30m ./pkg/reconcile/pgsource/ | tee -a bench.txt
	$(GO) test -run='^$$' -bench='B6' -benchmem -benchtime=2000x -timeout 30m ./internal/store/ | tee -a bench.txt
	$(GO) test -run='^$$' -bench='B10$$' -benchmem -benchtime=200x -timeout 30m ./internal/store/ | tee -a bench.txt
	$(GO) test -run='^$$' -bench='B1$$' -benchmem -benchtime=100000x -timeout 30m ./e2e/ | tee -a bench.txt
	$(GO) test -run='^$$' -bench='B7' -benchmem -benchtime=20000x -timeout 30m ./e2e/ | tee -a bench.txt
	$(GO) run ./tools/benchratio bench.txt

fuzz: ## fuzz the envelope decoders (against the previous decoder), the differ and the gate for 30s each
	$(GO) test -run='^$$' -fuzz='FuzzDecode$$' -fuzztime=30s ./pkg/envelope/
	$(GO) test -run='^$$' -fuzz=FuzzDecodeMessage -fuzztime=30s ./pkg/envelope/
	$(GO) test -run='^$$' -fuzz=FuzzValues -fuzztime=30s ./pkg/diff/
	$(GO) test -run='^$$' -fuzz=FuzzEvaluate -fuzztime=30s ./pkg/report/

fmt: ## format the code
	gofmt -w .

lint: tidy-check ## gofmt, go vet and a tidy go.mod (the main module and the deployments' test module)
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	cd deployments && $(GO) vet ./...

tidy-check: ## fail when go mod tidy would change go.mod or go.sum (of the main module or deployments/)
	@for d in . deployments; do \
		cp $$d/go.mod /tmp/parity.go.mod && cp $$d/go.sum /tmp/parity.go.sum; \
		(cd $$d && $(GO) mod tidy); \
		diff -q $$d/go.mod /tmp/parity.go.mod >/dev/null && diff -q $$d/go.sum /tmp/parity.go.sum >/dev/null || { echo "go mod tidy changes $$d/go.mod or go.sum"; cp /tmp/parity.go.mod $$d/go.mod; cp /tmp/parity.go.sum $$d/go.sum; exit 1; }; \
	done
