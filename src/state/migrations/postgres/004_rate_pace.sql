-- A pace lowered after a 429 without Retry-After (the tenant's real budget
-- is below the configured one, by an unknown amount), shared by every
-- process of the budget like the pause (src/state/postgres-rate-limiter.ts).
-- The limit in force is GREATEST(1, floor(p_limit * pace)). Named budgets
-- need no column: their name is part of tenant_key.
ALTER TABLE rate_limit_buckets
  ADD COLUMN pace            DOUBLE PRECISION NOT NULL DEFAULT 1,
  ADD COLUMN pace_lowered_at TIMESTAMPTZ      NOT NULL DEFAULT '-infinity';

-- As in 003, with the limit in force in place of p_limit, and the pace
-- reset once the budget has been idle (no slot left) for a whole hold
-- after the last pause and the last lowering.
CREATE OR REPLACE FUNCTION cxrec_rate_acquire(
  p_key             TEXT,
  p_limit           INTEGER,
  p_want            INTEGER,
  p_hold_ms         DOUBLE PRECISION,
  p_max_in_flight_ms DOUBLE PRECISION,
  p_poll_ms         DOUBLE PRECISION
) RETURNS TABLE (slot_ids BIGINT[], wait_ms DOUBLE PRECISION, blocked_by TEXT)
LANGUAGE plpgsql AS $$
DECLARE
  b           rate_limit_buckets%ROWTYPE;
  v_now       TIMESTAMPTZ;
  v_hold      INTERVAL := make_interval(secs => p_hold_ms / 1000.0);
  v_max       INTERVAL := make_interval(secs => p_max_in_flight_ms / 1000.0);
  v_limit     INTEGER;
  v_used      INTEGER;
  v_in_flight INTEGER;
  v_free      INTEGER;
  v_ids       BIGINT[] := ARRAY[]::BIGINT[];
  v_next      TIMESTAMPTZ;
BEGIN
  INSERT INTO rate_limit_buckets (tenant_key) VALUES (p_key) ON CONFLICT DO NOTHING;
  SELECT * INTO b FROM rate_limit_buckets WHERE tenant_key = p_key FOR UPDATE;
  -- Taken after the lock (now() is the transaction's start, before any
  -- wait for it). Under READ COMMITTED each statement below sees every
  -- slot committed by whoever held the lock before us.
  v_now := clock_timestamp();
  DELETE FROM rate_limit_slots WHERE tenant_key = p_key AND frees_at <= v_now;

  IF v_now < b.paused_until THEN
    RETURN QUERY SELECT v_ids, (extract(epoch FROM b.paused_until - v_now) * 1000)::DOUBLE PRECISION, 'pause'::TEXT;
    RETURN;
  END IF;

  IF b.pace < 1
     AND v_now >= b.paused_until + v_hold
     AND v_now >= b.pace_lowered_at + v_hold
     AND NOT EXISTS (SELECT 1 FROM rate_limit_slots WHERE tenant_key = p_key) THEN
    UPDATE rate_limit_buckets SET pace = 1 WHERE tenant_key = p_key;
    b.pace := 1;
  END IF;
  v_limit := GREATEST(1, floor(p_limit * b.pace))::INTEGER;

  SELECT count(*), count(*) FILTER (WHERE done_at IS NULL AND deadline > v_now)
    INTO v_used, v_in_flight
    FROM rate_limit_slots WHERE tenant_key = p_key;
  v_free := GREATEST(0, LEAST(p_want, v_limit - v_used, COALESCE(b.ramp_cap - v_in_flight, p_want)));

  IF v_free > 0 THEN
    WITH ins AS (
      INSERT INTO rate_limit_slots (tenant_key, acquired_at, deadline, frees_at, pause_epoch)
      SELECT p_key, v_now, v_now + v_max, v_now + v_max + v_hold, b.pause_epoch
      FROM generate_series(1, v_free)
      RETURNING id
    )
    SELECT array_agg(id ORDER BY id) INTO v_ids FROM ins;
  END IF;

  IF v_free >= p_want THEN
    RETURN QUERY SELECT v_ids, 0::DOUBLE PRECISION, NULL::TEXT;
  ELSIF v_used + v_free >= v_limit THEN
    -- Full. A released slot frees at its frees_at; one still in flight
    -- cannot free before now + hold (were it released this instant), so
    -- that is the earliest worth asking again.
    SELECT min(CASE WHEN done_at IS NULL AND deadline > v_now THEN v_now + v_hold ELSE frees_at END)
      INTO v_next
      FROM rate_limit_slots WHERE tenant_key = p_key;
    RETURN QUERY SELECT v_ids, GREATEST(0, extract(epoch FROM v_next - v_now) * 1000)::DOUBLE PRECISION, 'full'::TEXT;
  ELSE
    -- Only the slow start holds us back: a release (of any process) lifts it, at a time nobody knows.
    RETURN QUERY SELECT v_ids, p_poll_ms, 'ramp'::TEXT;
  END IF;
END;
$$;

-- As in 003, the slow start ending at the limit in force.
CREATE OR REPLACE FUNCTION cxrec_rate_release(
  p_key     TEXT,
  p_id      BIGINT,
  p_sent    BOOLEAN,
  p_hold_ms DOUBLE PRECISION,
  p_limit   INTEGER
) RETURNS VOID
LANGUAGE plpgsql AS $$
DECLARE
  v_now   TIMESTAMPTZ := clock_timestamp();
  v_hold  INTERVAL := make_interval(secs => p_hold_ms / 1000.0);
  v_epoch BIGINT;
BEGIN
  IF NOT p_sent THEN
    DELETE FROM rate_limit_slots WHERE id = p_id;
    RETURN;
  END IF;
  UPDATE rate_limit_slots SET done_at = v_now, frees_at = v_now + v_hold
    WHERE id = p_id AND done_at IS NULL
    RETURNING pause_epoch INTO v_epoch;
  IF NOT FOUND THEN
    -- Released after its deadline and already pruned: the request ran
    -- longer than max in-flight. Count it from now anyway, so at least
    -- the rest of its window is respected.
    INSERT INTO rate_limit_slots (tenant_key, acquired_at, deadline, done_at, frees_at, pause_epoch)
    SELECT p_key, v_now, v_now, v_now, v_now + v_hold, pause_epoch
    FROM rate_limit_buckets WHERE tenant_key = p_key;
    RETURN;
  END IF;
  UPDATE rate_limit_buckets
    SET ramp_cap = CASE WHEN ramp_cap * 2 >= GREATEST(1, floor(p_limit * pace)) THEN NULL ELSE ramp_cap * 2 END
    WHERE tenant_key = p_key AND ramp_cap IS NOT NULL AND pause_epoch = v_epoch;
END;
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
