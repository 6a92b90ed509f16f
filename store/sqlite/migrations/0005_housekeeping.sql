-- The leases of scheduled work, and the indexes that housekeeping deletes
-- by. (Browser logins and throttles of a server on SQLite, which runs
-- alone, stay in its memory.)

CREATE TABLE leases (
	name       TEXT    PRIMARY KEY,
	holder     TEXT    NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT;

-- Housekeeping deletes expired tokens, and their feed entries with them.
CREATE INDEX tokens_expires ON tokens (expires_at, id) WHERE expires_at IS NOT NULL;
CREATE INDEX revocations_token ON revocations (token_id);
