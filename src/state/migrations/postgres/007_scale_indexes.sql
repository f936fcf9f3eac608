-- Indexes that keep the hot queries' cost flat in the ledger's size (a
-- million rows): each one is named by the query it serves, and
-- test/contract/query-plans.test.ts checks the plans use them.

-- claim: due pending rows in (next_run_at, recording_id, channel) order
-- straight from the index, so a LIMIT reads only the rows it takes (the
-- old (state, next_run_at) index left the key tie-break to a sort of every
-- due row).
DROP INDEX jobs_due;
CREATE INDEX jobs_due ON jobs (state, next_run_at, recording_id, channel);
-- status and /metrics: rows per state and reason, and the stored bytes, read
-- from the index alone (an index-only scan once VACUUM has marked the pages
-- all-visible, as autovacuum does).
CREATE INDEX jobs_state_reason ON jobs (state, reason, stored_size_bytes);
-- The oldest unsettled row, the unsettled rows of an export's window, the
-- unsettled rows near retention: a range of one state by createdDate.
CREATE INDEX jobs_state_created ON jobs (state, created_date);
