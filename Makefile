# Makefile for tandem. Each target has a one-line comment above it; keep
# targets grouped by area and list them in .PHONY.

PAIR := scripts/pair.sh
# Go from PATH, or where the official tarball installs it.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)

.PHONY: pair-install pair-up pair-down pair-status chromium-install build test demo stop fuzz

# --- the two set-up commands (README) ----------------------------------------

# Start the local pair and tandem in front of it on 127.0.0.1:3306; print how to connect.
demo:
	scripts/demo.sh start

# Run every test: unit, fuzz seeds and integration tests on the real local pair
# (reset first to its normal state: a writable, b read-only, in sync), the
# admin API's browser test in headless Chromium (installed if missing),
# package coord's own etcd cluster (from bin/etcd, built if missing), then
# each fuzz target briefly (2s each).
test: pair-up chromium-install etcd-build
	$(PAIR) reset
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=2s

# Stop what `make demo` started (tandem and the pair; data is kept).
stop:
	scripts/demo.sh stop

# Build the tandem binary into bin/.
build:
	$(GO) build -o bin/tandem ./cmd/tandem

# Run every fuzz target for FUZZTIME each (default 20s).
FUZZTIME ?= 20s
fuzz:
	@for pkg in ./proxy ./replication; do \
		for f in $$($(GO) test -list 'Fuzz.*' $$pkg | grep ^Fuzz); do \
			echo "fuzz $$pkg $$f"; \
			$(GO) test $$pkg -run XXX -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) || exit 1; \
		done; \
	done

# --- local MariaDB master-master pair (scripts/pair.sh) -----------------------
# Nodes a (127.0.0.1:$${TANDEM_PAIR_PORT_A:-13306}, writable) and b
# (127.0.0.1:$${TANDEM_PAIR_PORT_B:-13307}, read_only) under
# $${TANDEM_PAIR_DIR:-/tmp/tandem-pair}. `scripts/pair.sh env` prints the
# exports; `scripts/pair.sh --help` lists the fault-injection commands.

# Install mariadb-server/-client from Debian if missing (service never started).
pair-install:
	$(PAIR) install

# Start the pair (initialising it the first time) and wait until it replicates both ways.
pair-up:
	$(PAIR) up

# Stop both nodes, keeping their data (scripts/pair.sh down --purge also deletes it).
pair-down:
	$(PAIR) down

# Show each node's state, role, replication threads and GTID position; fails if unhealthy.
pair-status:
	$(PAIR) status

# --- headless Chromium for the admin API's browser test ----------------------

# Install Debian's chromium if missing (scripts/chromium.sh; needs root).
chromium-install:
	scripts/chromium.sh install
# --- local etcd cluster (scripts/etcd.sh) -------------------------------------
# Three members on 127.0.0.1 (clients $${TANDEM_ETCD_CLIENT_PORTS:-23791 23792
# 23793}) under $${TANDEM_ETCD_DIR:-/tmp/tandem-etcd}, built from tools/etcd (its
# own module; the main module never depends on the server). `scripts/etcd.sh
# --help` lists the fault-injection commands.

.PHONY: etcd-build etcd-up etcd-down

# Build bin/etcd from tools/etcd (pinned etcd server release) if missing or outdated.
etcd-build:
	GO=$(GO) scripts/etcd.sh build

# Start the three-member etcd cluster and wait until it is healthy.
etcd-up: etcd-build
	scripts/etcd.sh up

# Stop the etcd cluster, keeping its data (scripts/etcd.sh down --purge also deletes it).
etcd-down:
	scripts/etcd.sh down

# --- benchmarks (scripts/bench.sh) ------------------------------------------

.PHONY: bench

# sysbench and connect-per-request, direct vs HAProxy vs tandem, and proxy RSS with 1,000 idle sessions (BENCH_SECONDS=3 BENCH_ROUNDS=1 for a quick run).
bench: pair-up build
	BENCH_SKIP_PAIR_UP=1 BENCH_SKIP_BUILD=1 scripts/bench.sh

# --- failover benchmark (cmd/failoverbench) ---------------------------------

.PHONY: failover-bench

# The fault matrix under a Go read/write workload (SIGKILL, SIGSTOP, switchover, passive not receiving, replication link cut, fence refused, tandem crash mid-promotion, lost state file, stuck switchover, old active restarted): what tandem did, writes back, client errors, lost writes, moments with two writable nodes (FAILOVER_BENCH_FLAGS="-rounds 1 -slow-rounds 1" for a quicker run, "-modes kill" for one fault).
failover-bench: pair-up
	$(GO) run ./cmd/failoverbench $(FAILOVER_BENCH_FLAGS)

# --- several tandems on three namespace hosts (scripts/cluster.sh, root) -----
# host1: etcd + MariaDB node a + tandem; host2: etcd + node b + tandem;
# witness: etcd. Namespaces $${TANDEM_CLUSTER_NS:-tdm}-*, addresses
# $${TANDEM_CLUSTER_NET:-10.77.0}.11-13, data $${TANDEM_CLUSTER_DIR:-/tmp/tandem-cluster}.

.PHONY: cluster-demo cluster-down

# Start the three hosts, the pair in host1/host2 and a tandem on each; print how to connect.
cluster-demo: pair-install etcd-build build
	scripts/cluster.sh demo

# Stop everything cluster-demo started and delete the namespaces (data kept; scripts/cluster.sh down --purge deletes it).
cluster-down:
	scripts/cluster.sh down
