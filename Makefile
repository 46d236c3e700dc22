# Makefile for tandem. Each target has a one-line comment above it; keep
# targets grouped by area and list them in .PHONY.

PAIR := scripts/pair.sh

.PHONY: pair-install pair-up pair-down pair-status

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
