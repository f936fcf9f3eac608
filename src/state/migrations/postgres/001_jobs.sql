-- One row per recording and wanted channel: what was found, what is owed,
-- what is done. Times are milliseconds since the epoch (BIGINT) so they
-- compare exactly with the `now` the caller passes. Text keys use the "C"
-- collation so rows sort byte-wise, exactly as in the SQLite ledger,
-- whatever the database's locale.
CREATE TABLE jobs (
  recording_id        TEXT COLLATE "C" NOT NULL,
  channel             TEXT COLLATE "C" NOT NULL CHECK (channel IN ('combined', 'caller', 'agent')),
  state               TEXT NOT NULL CHECK (state IN (
                        'waiting', 'pending', 'downloading',
                        'stored', 'purged', 'media_unavailable',
                        'failed_processing', 'out_of_retention', 'failed')),
  -- Why a final state was reached, e.g. 'download failed after 8 attempts'.
  reason              TEXT,

  -- The recording as search listed it, one column per field so operators can query it.
  contact_id          TEXT,
  status              TEXT NOT NULL,
  created_date        TEXT COLLATE "C" NOT NULL,
  duration_seconds    DOUBLE PRECISION,
  direction           TEXT,
  agent_id            TEXT,
  skill_name          TEXT,

  attempts            INTEGER NOT NULL DEFAULT 0,
  next_run_at         BIGINT  NOT NULL,
  first_seen_at       BIGINT  NOT NULL,
  lease_owner         TEXT,
  lease_expires_at    BIGINT,
  last_error_code     TEXT,
  last_error_message  TEXT,
  last_error_at       BIGINT,

  -- A staged, uncommitted upload (S3 upload id, .partial name, block prefix).
  upload_token        TEXT,
  upload_bytes        BIGINT,

  -- The committed object, once stored.
  stored_key          TEXT,
  stored_size_bytes   BIGINT,
  stored_md5          TEXT,
  stored_sha256       TEXT,
  stored_content_type TEXT,
  stored_at           BIGINT,

  updated_at          BIGINT NOT NULL,
  PRIMARY KEY (recording_id, channel)
);

-- claim: pending rows by next_run_at, downloading rows by lease expiry.
CREATE INDEX jobs_due ON jobs (state, next_run_at);
CREATE INDEX jobs_lease ON jobs (state, lease_expires_at);
-- list() and the oldest backlog row are ordered by createdDate.
CREATE INDEX jobs_created ON jobs (created_date);
-- listStored pages through stored rows in key order.
CREATE INDEX jobs_state_key ON jobs (state, recording_id, channel);
-- status shows the most recent error; few rows have one.
CREATE INDEX jobs_last_error ON jobs (last_error_at) WHERE last_error_at IS NOT NULL;
-- leftovers to resume or discard; few rows hold a token at any time.
CREATE INDEX jobs_upload ON jobs (recording_id, channel) WHERE upload_token IS NOT NULL;

-- Discovery progress, e.g. the createdDate up to which `run` has listed.
CREATE TABLE watermarks (
  name       TEXT PRIMARY KEY,
  value      TEXT   NOT NULL,
  updated_at BIGINT NOT NULL
);
