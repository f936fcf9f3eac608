-- A pace lowered after a 429 without Retry-After (the tenant's real budget
-- is below the configured one, by an unknown amount), shared by every
-- process of the budget like the pause (src/state/postgres-rate-limiter.ts).
-- The limit in force is GREATEST(1, floor(p_limit * pace)). Named budgets
-- need no column: their name is part of tenant_key.
ALTER TABLE rate_limit_buckets
  ADD COLUMN pace            DOUBLE PRECISION NOT NULL DEFAULT 1,
  ADD COLUMN pace_lowered_at TIMESTAMPTZ      NOT NULL DEFAULT '-infinity';

-- 003's grant and release run unchanged at the limit in force: renamed,
-- they are called by the two functions below, which work that limit out
-- (resetting the pace once the budget has been idle, no slot left, for a
-- whole hold after the last pause and the last lowering).
ALTER FUNCTION cxrec_rate_acquire(TEXT, INTEGER, INTEGER, DOUBLE PRECISION, DOUBLE PRECISION, DOUBLE PRECISION)
  RENAME TO cxrec_rate_acquire_at;
ALTER FUNCTION cxrec_rate_release(TEXT, BIGINT, BOOLEAN, DOUBLE PRECISION, INTEGER)
  RENAME TO cxrec_rate_release_at;

-- Same arguments and answer as 003's.
CREATE FUNCTION cxrec_rate_acquire(p_key TEXT, p_limit INTEGER, p_want INTEGER,
  p_hold_ms DOUBLE PRECISION, p_max_in_flight_ms DOUBLE PRECISION, p_poll_ms DOUBLE PRECISION)
RETURNS TABLE (slot_ids BIGINT[], wait_ms DOUBLE PRECISION, blocked_by TEXT)
LANGUAGE plpgsql AS $$
DECLARE
  b      rate_limit_buckets%ROWTYPE;
  v_now  TIMESTAMPTZ;
  v_hold INTERVAL := make_interval(secs => p_hold_ms / 1000.0);
BEGIN
  -- The bucket row's lock (which cxrec_rate_acquire_at takes again, in
  -- this transaction) serializes the reset with every other grant.
  INSERT INTO rate_limit_buckets (tenant_key) VALUES (p_key) ON CONFLICT DO NOTHING;
  SELECT * INTO b FROM rate_limit_buckets WHERE tenant_key = p_key FOR UPDATE;
  v_now := clock_timestamp();
  -- While paused, v_now < paused_until + hold: no reset.
  IF b.pace < 1
     AND v_now >= b.paused_until + v_hold
     AND v_now >= b.pace_lowered_at + v_hold
     AND NOT EXISTS (SELECT 1 FROM rate_limit_slots WHERE tenant_key = p_key AND frees_at > v_now) THEN
    UPDATE rate_limit_buckets SET pace = 1 WHERE tenant_key = p_key;
    b.pace := 1;
  END IF;
  RETURN QUERY SELECT * FROM cxrec_rate_acquire_at(
    p_key, GREATEST(1, floor(p_limit * b.pace))::INTEGER, p_want, p_hold_ms, p_max_in_flight_ms, p_poll_ms);
END;
$$;

-- The slow start ends at the limit in force.
CREATE FUNCTION cxrec_rate_release(p_key TEXT, p_id BIGINT, p_sent BOOLEAN, p_hold_ms DOUBLE PRECISION, p_limit INTEGER)
RETURNS VOID
LANGUAGE sql AS $$
  SELECT cxrec_rate_release_at(p_key, p_id, p_sent, p_hold_ms, COALESCE(
    (SELECT GREATEST(1, floor(p_limit * pace))::INTEGER FROM rate_limit_buckets WHERE tenant_key = p_key),
    p_limit));
$$;

-- A 429 came without Retry-After: the pace drops by p_factor, at most once
-- per hold, because the other requests refused in that hold were sent at
-- the old pace and say nothing about the new one.
CREATE FUNCTION cxrec_rate_lower_pace(p_key TEXT, p_hold_ms DOUBLE PRECISION, p_factor DOUBLE PRECISION)
RETURNS VOID
LANGUAGE sql AS $$
  INSERT INTO rate_limit_buckets (tenant_key) VALUES (p_key) ON CONFLICT DO NOTHING;
  UPDATE rate_limit_buckets
    SET pace = pace * p_factor, pace_lowered_at = clock_timestamp()
    WHERE tenant_key = p_key
      AND pace_lowered_at + make_interval(secs => p_hold_ms / 1000.0) <= clock_timestamp();
$$;
