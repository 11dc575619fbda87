# ripplecache — run `make help` for the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VITEST_REPORTERS := $(if $(VITEST_JSON),--reporter=default --reporter=json --outputFile.json=$(VITEST_JSON),)

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*?## "} /^[a-zA-Z0-9_.-]+:.*?## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: setup
setup: ## Install everything the tests and the demo need (redis-server, npm packages, control plane, helm)
	@bash scripts/ensure-tools.sh

.PHONY: tools
tools: ## Build (or reuse) etcd, kube-apiserver, kube-controller-manager, kubectl and helm in ~/.cache/ripplecache
	@bash tools/kube/build.sh >/dev/null

.PHONY: build
build: ## Compile TypeScript to dist/ and bundle the operator (dist/operator/bundle/main.mjs)
	npm run build

.PHONY: typecheck
typecheck: ## Type-check everything (sources, tests, benchmarks, scripts)
	npx tsc -p tsconfig.json --noEmit

.PHONY: lint
lint: ## ESLint (type-aware typescript-eslint) and Prettier's check; make test runs it
	npx eslint .
	npx prettier --check .

.PHONY: fmt
fmt: ## Format with Prettier, then apply ESLint's automatic fixes
	npx prettier --write .
	npx eslint --fix .

.PHONY: manifests
manifests: ## Regenerate crds/ from operator/src/api (the schema's source of truth) and the chart's copy
	npx tsx scripts/generate-crds.ts
	bash scripts/sync-chart-crds.sh

.PHONY: manifests-check
manifests-check: ## Fail when crds/ (or the chart's copy) differs from operator/src/api
	npx tsx scripts/generate-crds.ts --check
	bash scripts/sync-chart-crds.sh --check

.PHONY: test
test: setup typecheck lint manifests-check promtool-test ## Run every test: type-check, lint, unit, integration (real control plane, Redis, PostgreSQL)
	npx vitest run $(VITEST_REPORTERS)

.PHONY: promtool-test
promtool-test: ## promtool unit tests of every alert of the chart's PrometheusRule (test/promtool/*.test.yaml)
	npx tsx scripts/promtool-test.ts

.PHONY: test-unit
test-unit: ## Unit tests only (no I/O)
	npx vitest run --project unit

.PHONY: test-integration
test-integration: setup ## Integration tests only
	npx vitest run --project integration

.PHONY: demo
demo: setup ## Local demo: control plane, operator, CacheClusters, local Redis pods, sidecars
	npx tsx scripts/demo.ts

.PHONY: bench
bench: setup ## All benchmarks (ratios against same-run baselines)
	npm run bench

.PHONY: e2e
e2e: ## End-to-end tests on kind (needs Docker; see test/e2e/README.md)
	bash test/e2e/run.sh

.PHONY: e2e-local
e2e-local: setup ## End-to-end tests on real pods on this machine (root, Linux; no Docker; see README)
	@bash scripts/e2e-local.sh $(VITEST_REPORTERS)

.PHONY: images
images: ## Build the operator and sidecar container images (needs Docker)
	docker build -f images/operator.Dockerfile -t ghcr.io/ripplecache/operator:dev .
	docker build -f images/sidecar.Dockerfile -t ghcr.io/ripplecache/sidecar:dev .
