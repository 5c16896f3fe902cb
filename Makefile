# Ladder: the two commands a new user needs are `make synth` and `make test`.
# Every target installs what it needs (the pinned Node 24 and CDK CLI from
# package-lock.json) and puts node_modules/.bin first on PATH, because the
# CLI and jsii both start `node` from PATH.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

# The CDK app's packages. node_modules holds Go template files of the CDK CLI,
# so `./...` cannot be used at the root.
CDK_PKGS := ./app/... ./stacks/... ./test/... $(if $(wildcard lambda-src),./lambda-src/...)
SERVICES := vote worker result loadgen

.PHONY: help deps synth test test-cdk test-services build-services snapshot-update bench-synth bench-services clean

help:
	@echo "make synth            synthesize every rung into cdk.out/ (offline, no AWS account)"
	@echo "make test             run every test (starts local Redis and PostgreSQL)"
	@echo "make snapshot-update  rewrite test/snapshots/ after an intended change; review the diff"
	@echo "make bench-synth      synth wall time vs a one-bucket app (median, ratio)"
	@echo "make bench-services   vote/worker/result throughput and latency vs Redis/PostgreSQL limits"

# npm ci only when package-lock.json changed since the last install.
# --omit=peer: the kubectl layer package names aws-cdk-lib as a peer, a
# 160 MB JavaScript library this Go app never loads (it needs only the
# layer's zip).
node_modules/.ladder-installed: package.json package-lock.json
	npm ci --omit=peer --no-audit --no-fund --loglevel=error
	@touch $@

deps: node_modules/.ladder-installed

synth: deps
	cdk synth --quiet
	@echo "synthesized into cdk.out/:"; ls cdk.out/*.template.json

test: test-cdk test-services

# lambda-src's tests use the real PostgreSQL (db-migrate) and run the real
# services (canary), so the CDK half needs Redis and PostgreSQL as well.
test-cdk: deps check-reproducible
	go vet $(CDK_PKGS)
	eval "$$(scripts/test-deps.sh)" && go test -count=1 $(CDK_PKGS)

# The same source must synthesize byte-identical templates (asset hashes
# included) wherever it is checked out: two copies of the working tree (tracked
# files plus untracked, unignored ones, so uncommitted work is checked too) in
# different directories, synthesized by the CLI in parallel (~20 s).
.PHONY: check-reproducible
check-reproducible: deps
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	for d in a deeper/checkout/b; do \
	  mkdir -p "$$tmp/$$d"; \
	  git ls-files -z --cached --others --exclude-standard | tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -xf - -C "$$tmp/$$d"; \
	  rm -rf "$$tmp/$$d/node_modules" "$$tmp/$$d/cdk.out"; ln -s "$(CURDIR)/node_modules" "$$tmp/$$d/node_modules"; \
	  (cd "$$tmp/$$d" && cdk synth --quiet -o cdk.out >synth.log 2>&1 || { cat synth.log; exit 1; }) & \
	done; \
	fail=0; for j in $$(jobs -p); do wait $$j || fail=1; done; [ $$fail = 0 ]; \
	a="$$tmp/a/cdk.out"; b="$$tmp/deeper/checkout/b/cdk.out"; \
	for f in "$$a"/*.template.json "$$a"/*.assets.json; do cmp "$$f" "$$b/$${f##*/}"; done; \
	diff <(cd "$$a" && ls -d asset.*) <(cd "$$b" && ls -d asset.*); \
	echo "check-reproducible: $$(ls "$$a"/*.template.json | wc -l) templates byte-identical from two checkouts"

# Redis and PostgreSQL are started (and installed if absent) by test-deps.sh,
# which prints the connection settings the integration tests read.
test-services: deps build-services
	cd services && go vet ./...
	eval "$$(scripts/test-deps.sh)" && cd services && go test -count=1 -timeout 10m ./...

# The same build the Dockerfiles run (scripts/build.sh), for both image
# architectures: a green build here is the Go half of every image.
build-services:
	for arch in arm64 amd64; do for svc in $(SERVICES); do \
	  GOOS=linux GOARCH=$$arch services/scripts/build.sh $$svc $(CURDIR)/services/bin/linux-$$arch; \
	done; done
	@ls services/bin/*

snapshot-update: deps
	UPDATE_SNAPSHOTS=1 go test -count=1 -run TestSnapshots ./test/
	git --no-pager diff --stat -- test/snapshots

bench-synth: deps
	scripts/bench-synth.sh 7

bench-services:
	eval "$$(scripts/test-deps.sh)" && services/bench/run.sh

clean:
	rm -rf cdk.out services/bin
