-- The in-process rate limiter's recent grants, so that a process started
-- right after another one died (SIGKILL, OOM, power) knows which requests
-- of the dead one still count in the tenant's sliding window. One row per
-- permit granted; times are wall-clock milliseconds since the epoch, the
-- only clock two processes share. `done_at` is NULL while the request is in
-- flight (or when its process died with it in flight). Rows older than a
-- window are pruned, so the table stays about one window's grants.
CREATE TABLE rate_limit_log (
  id          INTEGER PRIMARY KEY,
  acquired_at INTEGER NOT NULL,
  done_at     INTEGER
);

-- Pruning deletes by completion time.
CREATE INDEX rate_limit_log_done ON rate_limit_log (done_at);
