-- The platform dialect's contact fields (cxone-platform-api.md section 3),
-- one column each so an operator can read them with plain SQL. A row of
-- that dialect is one master contact: `contact_ids` lists every leg's
-- contactId (comma separated, in start order). The recording-api dialect
-- leaves them NULL.
ALTER TABLE jobs ADD COLUMN contact_ids TEXT;
ALTER TABLE jobs ADD COLUMN from_address TEXT;
ALTER TABLE jobs ADD COLUMN to_address TEXT;
ALTER TABLE jobs ADD COLUMN skill_id TEXT;
ALTER TABLE jobs ADD COLUMN agent_name TEXT;
