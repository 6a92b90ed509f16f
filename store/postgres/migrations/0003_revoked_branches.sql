-- Branch revocation: the revoked branches of named tokens, and branch
-- entries in the revocation feed.

-- A branch is the binding id of one tail of a token (16 bytes of its
-- SHA-256). A token has at most store.MaxRevokedBranches of them;
-- RevokeBranch counts them under the token's row lock before it inserts,
-- so concurrent revocations cannot pass the bound together.
CREATE TABLE revoked_branches (
	token_id   text        NOT NULL REFERENCES tokens (id),
	branch     bytea       NOT NULL CHECK (length(branch) = 16),
	revoked_at timestamptz NOT NULL,
	revoked_by bigint      REFERENCES users (id), -- NULL: the branch revoked itself
	PRIMARY KEY (token_id, branch)
);

-- NULL for the revocation of a whole token.
ALTER TABLE revocations ADD COLUMN branch bytea CHECK (branch IS NULL OR length(branch) = 16);
