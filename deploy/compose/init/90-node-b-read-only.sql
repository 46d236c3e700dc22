-- node-b only: from its first real start on, node-b is read-only
-- (super_read_only also stops SUPER/admin accounts; replication still applies).
--
-- PERSIST_ONLY writes mysqld-auto.cnf in the data directory without touching
-- the running server: the temporary server of the entrypoint must stay writable
-- until initialisation is done, which is also why this is not in node-b.cnf.
--
-- If tandem promotes node-b it makes it writable with SET GLOBAL (not
-- persisted): a restarted node-b comes up read-only again, and tandem makes it
-- writable again if it is still the decided active node.
SET PERSIST_ONLY read_only = ON;
SET PERSIST_ONLY super_read_only = ON;
