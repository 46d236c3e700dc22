-- Runs last, on both nodes. Before the files here ran, the entrypoint loaded
-- the time zone tables with binary logging on, which gave each node a few
-- transactions under its own server_uuid. Forget them: both nodes start with
-- an empty gtid_executed, so neither holds transactions the other lacks.
-- (MySQL 8.0 spelling; 8.4 renames it RESET BINARY LOGS AND GTIDS.)
RESET MASTER;
