-- Named leases, e.g. 'discoverer': at most one live holder per name. A
-- holder that dies simply stops renewing; once `expires_at` (ms since the
-- epoch, on the caller's clock like the job leases) has passed, another
-- owner may take the name over.
CREATE TABLE leases (
  name       TEXT    PRIMARY KEY,
  owner      TEXT    NOT NULL,
  expires_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
