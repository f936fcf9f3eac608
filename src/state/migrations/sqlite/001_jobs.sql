-- One row per recording and wanted channel: what was found, what is owed,
-- what is done. Times are milliseconds since the epoch (INTEGER) so they
-- compare exactly with the `now` the caller passes; createdDate stays the
-- ISO text CXone gave, which sorts correctly at one-second resolution.
CREATE TABLE jobs (
  recording_id        TEXT    NOT NULL,
  channel             TEXT    NOT NULL CHECK (channel IN ('combined', 'caller', 'agent')),
  state               TEXT    NOT NULL CHECK (state IN (
                        'waiting', 'pending', 'downloading',
                        'stored', 'purged', 'media_unavailable',
                        'failed_processing', 'out_of_retention', 'failed')),
  -- Why a final state was reached, e.g. 'download failed after 8 attempts'.
  reason              TEXT,

  -- The recording as search listed it, one column per field so operators can query it.
  contact_id          TEXT,
  status              TEXT    NOT NULL,
  created_date        TEXT    NOT NULL,
  duration_seconds    REAL,
  direction           TEXT,
  agent_id            TEXT,
  skill_name          TEXT,

  attempts            INTEGER NOT NULL DEFAULT 0,
  next_run_at         INTEGER NOT NULL,
  first_seen_at       INTEGER NOT NULL,
  lease_owner         TEXT,
  lease_expires_at    INTEGER,
  last_error_code     TEXT,
  last_error_message  TEXT,
  last_error_at       INTEGER,

  -- A staged, uncommitted upload (S3 upload id, .partial name, block prefix).
  upload_token        TEXT,
  upload_bytes        INTEGER,

  -- The committed object, once stored.
  stored_key          TEXT,
  stored_size_bytes   INTEGER,
  stored_md5          TEXT,
  stored_sha256       TEXT,
  stored_content_type TEXT,
  stored_at           INTEGER,

  updated_at          INTEGER NOT NULL,
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
  value      TEXT    NOT NULL,
  updated_at INTEGER NOT NULL
);
