-- The processes working on this ledger, one row per owner id (a random id
-- each process makes at start; it is what `jobs.lease_owner` names). A live
-- process refreshes `heartbeat_at` every few seconds; one whose heartbeat
-- is older than 30 s is gone, and its leases may be taken back at once.
-- `host` and `pid` are for people reading the table: containers share host
-- names and pid 1, so they decide nothing alone. `kernel` is the
-- `<boot id>/<pid namespace>` the process ran in (NULL when unknown).
-- Times are ms since the epoch on the database server's clock, so hosts
-- whose clocks disagree still agree on how old a heartbeat is.
CREATE TABLE processes (
  owner_id     TEXT    PRIMARY KEY,
  host         TEXT    NOT NULL,
  pid          INTEGER NOT NULL,
  kernel       TEXT,
  started_at   BIGINT  NOT NULL,
  heartbeat_at BIGINT  NOT NULL
);
