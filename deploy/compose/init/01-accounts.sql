-- Accounts and the app database, identical on node-a and node-b.
--
-- The mysql:8.0 entrypoint runs the files of /docker-entrypoint-initdb.d in
-- name order, once, on an empty data directory, as root in a temporary server
-- (no TCP). Nothing here goes to the binary log (sql_log_bin = 0), so both
-- nodes start with the same data and an empty GTID history, and replication
-- has nothing to reconcile (99-reset-gtid-history.sql makes sure of it).
--
-- Demo passwords: change them here, in docker-compose.yml (MYSQL_ROOT_PASSWORD,
-- TANDEM_*_PASSWORD) and in replication-setup.sh (replpass) together.
SET SESSION sql_log_bin = 0;

CREATE DATABASE app;

-- The application. tandem logs in to the active node as this same user with
-- the same password (tandem.toml [[user]]), so it must exist on both nodes.
CREATE USER 'app'@'%' IDENTIFIED BY 'apppass';
GRANT ALL PRIVILEGES ON `app`.* TO 'app'@'%';

-- The account of tandem itself (tandem.toml failover.admin_user):
--   SYSTEM_VARIABLES_ADMIN   SET GLOBAL super_read_only / read_only (fencing,
--                            promotion), rpl_semi_sync_source_enabled
--   REPLICATION CLIENT       SHOW REPLICA STATUS
--   REPLICATION_SLAVE_ADMIN  STOP REPLICA on the promoted node, START REPLICA
--                            when the old node rejoins
--   PROCESS                  see every client in information_schema.PROCESSLIST
--   CONNECTION_ADMIN         KILL the connections of other accounts (fencing)
--   SYSTEM_USER              ... including connections of accounts that have
--                            SYSTEM_USER themselves (root): without it such a
--                            KILL fails with error 1095
--   ALL ON tandem.*          CREATE DATABASE tandem, its heartbeat and
--                            decision tables, and writes to them
--   SELECT ON mysql.user     the accounts clients not listed in [[user]] log
--                            in with (user, host, plugin, stored hash)
CREATE USER 'tandem'@'%' IDENTIFIED BY 'tandem';
GRANT PROCESS, REPLICATION CLIENT ON *.* TO 'tandem'@'%';
GRANT SYSTEM_VARIABLES_ADMIN, REPLICATION_SLAVE_ADMIN, CONNECTION_ADMIN, SYSTEM_USER ON *.* TO 'tandem'@'%';
GRANT ALL PRIVILEGES ON `tandem`.* TO 'tandem'@'%';
GRANT SELECT ON mysql.user TO 'tandem'@'%';

-- Replication: the replica of each node connects to the other as this user.
CREATE USER 'repl'@'%' IDENTIFIED BY 'replpass';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';
