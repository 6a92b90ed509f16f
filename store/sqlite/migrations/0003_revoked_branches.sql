-- Branch revocation: the revoked branches of named tokens, and branch
-- entries in the revocation feed.

-- A branch is the binding id of one tail of a token (16 bytes of its
-- SHA-256). A token has at most store.MaxRevokedBranches of them, counted
-- in tokens.revoked_branches; SQLite's single writer keeps the count exact.
CREATE TABLE revoked_branches (
	token_id   TEXT    NOT NULL REFERENCES tokens (id),
	branch     BLOB    NOT NULL CHECK (length(branch) = 16),
	revoked_at INTEGER NOT NULL,
	revoked_by INTEGER REFERENCES users (id), -- NULL: the branch revoked itself
	PRIMARY KEY (token_id, branch)
) STRICT, WITHOUT ROWID;

-- How many branches of the token are revoked: read with the token on every
-- verification, so that a token with none costs no second read, and kept
-- by RevokeBranch in the same transaction as its insert.
ALTER TABLE tokens ADD COLUMN revoked_branches INTEGER NOT NULL DEFAULT 0;

-- NULL for the revocation of a whole token.
ALTER TABLE revocations ADD COLUMN branch BLOB CHECK (branch IS NULL OR length(branch) = 16);
