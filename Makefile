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
# (reset first to its normal state: a writable, b read-only, in sync; the
# capability tests' clients installed if missing: test-clients), the
# admin API's browser test in headless Chromium (installed if missing),
# package coord's own etcd cluster (from bin/etcd, built if missing), Node's
# mysql2 directly and through tandem (drivers-quick), then each fuzz target
# briefly (10,000 inputs each: a count, not a time, since a time-bounded run can end with a spurious "context deadline exceeded" from go test on a loaded machine).
test: pair-up chromium-install etcd-build test-clients
	$(PAIR) reset
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...
	$(MAKE) --no-print-directory drivers-quick
	$(MAKE) --no-print-directory fuzz FUZZTIME=10000x

# Install the clients the proxy's capability tests run directly and through
# tandem (PHP mysqli, Connector/J with a JDK, the mariadb CLI) if missing.
.PHONY: test-clients
test-clients:
	scripts/drivers.sh install php-mysqli connectorj cli

# Stop what `make demo` started (tandem and the pair; data is kept).
stop:
	scripts/demo.sh stop

# Build the tandem binary into bin/.
build:
	$(GO) build -o bin/tandem ./cmd/tandem

# Run every fuzz target for FUZZTIME each (default 20s; a count such as 2000x works too).
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

.PHONY: cluster-demo cluster-down cluster-bench

# Start the three hosts, the pair in host1/host2 and a tandem on each; print how to connect.
cluster-demo: pair-install etcd-build build
	scripts/cluster.sh demo

# Stop everything cluster-demo started and delete the namespaces (data kept; scripts/cluster.sh down --purge deletes it).
cluster-down:
	scripts/cluster.sh down

# TestHostsFaults's timed faults CLUSTER_BENCH_ROUNDS times (default 5): host1 cut off (a or b active, either tandem coordinator), the active node killed, the witness cut off; each one's phases and their medians, lines TIMING (root; full log in CLUSTER_BENCH_LOG).
CLUSTER_BENCH_ROUNDS ?= 5
CLUSTER_BENCH_LOG ?= /tmp/tandem-cluster-bench.log
cluster-bench: pair-install etcd-build
	@$(GO) test -count=1 -timeout 90m -v -run 'TestHostsFaults/round' ./internal/hoststest \
		-hosts.rounds $(CLUSTER_BENCH_ROUNDS) >$(CLUSTER_BENCH_LOG) 2>&1; rc=$$?; \
	grep -E 'TIMING|phases after|NOTE|--- (PASS|FAIL)|^(ok|FAIL)' $(CLUSTER_BENCH_LOG); \
	echo "full log: $(CLUSTER_BENCH_LOG)"; exit $$rc

# --- client drivers directly and through tandem (scripts/drivers.sh) --------

.PHONY: drivers drivers-quick

# PHP mysqli/PDO, PyMySQL, mysqlclient, Node mysql2, Connector/J and the mariadb CLI, directly against node a and through tandem (no [[user]]; plain and TLS), compared check by check (installs what is missing; fails on any difference).
drivers: pair-up build
	scripts/drivers.sh run

# Node mysql2 alone, directly and through tandem, known differences allowed (part of make test).
drivers-quick: pair-up build
	TANDEM_DRIVERS_ALLOW_KNOWN=1 scripts/drivers.sh run mysql2
# --- client test suites directly and through tandem (scripts/compat.sh) -----

.PHONY: compat compat-install

# go-sql-driver/mysql's tests and a few hundred mysql-test-run tests (testdata/compat-mtr.list), each directly against node a and through tandem (no [[user]]), compared test by test; exit 1 if one differs (README, "Compatibility").
compat:
	scripts/compat.sh run

# Install Debian's mariadb-test (mysql-test-run) if missing.
compat-install:
	scripts/compat.sh install
