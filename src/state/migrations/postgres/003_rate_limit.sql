-- The tenant's API budget, shared by every cxrec process that uses this
-- database (src/state/postgres-rate-limiter.ts explains the algorithm and
-- why it is safe). Every timestamp is the database server's
-- clock_timestamp(), so the clocks of the machines running cxrec never
-- matter: only times taken on this one clock are compared.

-- One row per tenant key: the shared pause after a 429 and the slow start after it.
CREATE TABLE rate_limit_buckets (
  tenant_key   TEXT PRIMARY KEY,
  -- No process sends before this (a 429's Retry-After).
  paused_until TIMESTAMPTZ NOT NULL DEFAULT '-infinity',
  -- Bumped by every pause, so a release knows whether a pause happened while its request was out.
  pause_epoch  BIGINT      NOT NULL DEFAULT 0,
  -- Requests allowed in flight at once while slowly starting after a pause; NULL: no cap.
  ramp_cap     INTEGER
);

-- One row per request that still counts against the window: in flight
-- (done_at NULL), or answered less than a window ago.
CREATE TABLE rate_limit_slots (
  id          BIGSERIAL   PRIMARY KEY,
  tenant_key  TEXT        NOT NULL,
  acquired_at TIMESTAMPTZ NOT NULL,
  -- A permit never released (its process died) is taken as finished here.
  deadline    TIMESTAMPTZ NOT NULL,
  done_at     TIMESTAMPTZ,
  -- When the slot stops counting: deadline + hold while in flight, done_at + hold once released.
  frees_at    TIMESTAMPTZ NOT NULL,
  pause_epoch BIGINT      NOT NULL
);
CREATE INDEX rate_limit_slots_frees ON rate_limit_slots (tenant_key, frees_at);

-- Grants up to p_want slots in one transaction, serialized per tenant key
-- by the bucket row's lock. Returns the new slot ids and, when fewer than
-- p_want were granted, how long until trying again can succeed, and why.
CREATE FUNCTION cxrec_rate_acquire(
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

  SELECT count(*), count(*) FILTER (WHERE done_at IS NULL AND deadline > v_now)
    INTO v_used, v_in_flight
    FROM rate_limit_slots WHERE tenant_key = p_key;
  v_free := GREATEST(0, LEAST(p_want, p_limit - v_used, COALESCE(b.ramp_cap - v_in_flight, p_want)));

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
  ELSIF v_used + v_free >= p_limit THEN
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

-- Ends a slot. Sent: it keeps counting until a full hold after now, and a
-- request answered with no pause since it was granted widens the slow
-- start. Not sent: the slot is returned at once.
CREATE FUNCTION cxrec_rate_release(
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
    SET ramp_cap = CASE WHEN ramp_cap * 2 >= p_limit THEN NULL ELSE ramp_cap * 2 END
    WHERE tenant_key = p_key AND ramp_cap IS NOT NULL AND pause_epoch = v_epoch;
END;
$$;

-- The tenant answered 429: nobody sends for p_ms, then the slow start begins.
CREATE FUNCTION cxrec_rate_pause(p_key TEXT, p_ms DOUBLE PRECISION) RETURNS VOID
LANGUAGE sql AS $$
  INSERT INTO rate_limit_buckets AS b (tenant_key, paused_until, pause_epoch, ramp_cap)
  VALUES (p_key, clock_timestamp() + make_interval(secs => GREATEST(p_ms, 0) / 1000.0), 1, 1)
  ON CONFLICT (tenant_key) DO UPDATE SET
    paused_until = GREATEST(b.paused_until, excluded.paused_until),
    pause_epoch  = b.pause_epoch + 1,
    ramp_cap     = 1;
$$;
