-- One row per `cxrec export` (a dry run records nothing): the window it
-- covered, the selection it used (JSON: the ids file's name and count, the
-- agent/skill/direction filters; NULL for the whole window), the dialect,
-- and once it ended its exit code and its rows by state (JSON). Times are
-- ms since the epoch; `since`/`until` are the window's ISO-8601 bounds.
CREATE TABLE exports (
  id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  started_at BIGINT  NOT NULL,
  ended_at   BIGINT,
  since      TEXT    NOT NULL,
  until      TEXT    NOT NULL,
  selection  TEXT,
  dialect    TEXT    NOT NULL,
  exit_code  INTEGER,
  counts     TEXT
);
CREATE INDEX exports_started ON exports (started_at);
