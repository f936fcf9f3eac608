-- Why a row ended as it did, in two parts: `reason` is one of a bounded set
-- of words (no sizes, hosts, content types or ids), so `status` groups and
-- metric labels stay few; `detail` holds the specifics of this row (the
-- sizes, host or content type), NULL when there are none.
ALTER TABLE jobs ADD COLUMN detail TEXT;
