# Makefile for the dotdo platform. `make run` starts the whole platform on
# one machine; `make test` runs every test. Both install what they need.

SHELL := /bin/bash
BUF := go tool -modfile=tools/go.mod buf
GOLANGCI_LINT := go tool -modfile=tools/go.mod golangci-lint
# The services and their plumbing run under the race detector; the rest
# (end-to-end tests of built binaries, ops checks, benchmarks' tests) without.
RACE_PKGS := ./internal/... ./services/...

.PHONY: all build run test test-go test-ts fuzz generate checkgenerate lint deps npm wrangler proto-deps promtool clean

all: build

## deps: install npm packages (workerd, protoc-gen-es, TypeScript, the @stdy/cli contract mock) when package-lock.json changed.
deps: npm
npm: node_modules/.package-lock.json
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

## wrangler: wrangler 3 (the last major that runs on Node 20) in tools/wrangler, apart from the
## root package.json, for the test that wrangler accepts the examples' wrangler configs.
wrangler: tools/wrangler/node_modules/.package-lock.json
tools/wrangler/node_modules/.package-lock.json: tools/wrangler/package.json tools/wrangler/package-lock.json
	npm ci --prefix tools/wrangler --no-audit --no-fund --loglevel=error
	@touch $@

## promtool: Prometheus' rule checker, from Debian's prometheus package, for the alert rule tests.
promtool:
	@command -v promtool >/dev/null || { \
		echo "installing promtool (Debian package prometheus)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

## proto-deps: third-party protos (buf/validate, google/api) into .build/proto-deps.
proto-deps: npm
	./scripts/proto-deps.sh

## build: every binary into bin/.
build:
	go build -o bin/ ./cmd/...

## run: the whole platform on the default ports (dotdo dev).
run: npm build
	./bin/dotdo dev

## generate: gen/go and gen/ts from proto/, byte for byte, and the buf image
## (with doc comments) that the reflection service answers from.
generate: proto-deps
	$(BUF) generate
	$(BUF) build proto -o internal/protoimage/dotdo.binpb

## checkgenerate: fail when generate changes anything.
checkgenerate: generate
	@if [ -n "$$(git status --porcelain -- gen internal/protoimage)" ]; then \
		git status --short -- gen internal/protoimage; \
		echo "gen/ is stale: run 'make generate' and commit it"; exit 1; fi

## lint: gofmt, go vet, golangci-lint (staticcheck, errcheck, no init(), the layering
## rules of .golangci.yml), buf lint, buf format, buf breaking (against main, when main has protos).
lint: proto-deps
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...
	$(GOLANGCI_LINT) run ./...
	$(BUF) lint
	$(BUF) format -d --exit-code proto
	./scripts/buf-breaking.sh main

## test: every test: lint, generated code up to date, Go (unit, integration, e2e), TypeScript,
## and a short run of every fuzz target.
test: lint checkgenerate test-go test-ts fuzz

test-go: npm wrangler promtool
	go test -race -count=1 $(RACE_PKGS)
	go test -count=1 $$(go list ./... | grep -v -e '/internal/' -e '/services/')

## fuzz: run each fuzz target for FUZZTIME (5s; a seed corpus is committed under
## each package's testdata/fuzz, and go test runs it as a unit test anyway).
## Longer: make fuzz FUZZTIME=2m. Add a target as package:FuzzName.
FUZZTIME ?= 5s
FUZZ_TARGETS := \
	services/auth/apikey:FuzzParse \
	services/deploy:FuzzDeployREST \
	services/runtime/cfapi:FuzzParseUpload \
	internal/routing:FuzzRoute
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=./$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$name in $$pkg for $(FUZZTIME)"; \
		go test -run='^$$' -fuzz="^$$name$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	done

## test-ts: type-check gen/ts and the TypeScript tests with tsc, then run them with node --test.
test-ts: npm
	rm -rf .build/ts
	npx --no-install tsc -p tsconfig.json
	node --test .build/ts/test/ts/

clean:
	rm -rf bin .build
