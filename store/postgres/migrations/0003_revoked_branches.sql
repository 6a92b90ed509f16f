-- Branch revocation: the revoked branches of named tokens, and branch
-- entries in the revocation feed.

-- A branch is the binding id of one tail of a token (16 bytes of its
-- SHA-256). A token has at most store.MaxRevokedBranches of them, counted
-- in tokens.revoked_branches; RevokeBranch holds the token's row lock from
-- reading the count to updating it, so concurrent revocations cannot pass
-- the bound together.
CREATE TABLE revoked_branches (
	token_id   text        NOT NULL REFERENCES tokens (id),
	branch     bytea       NOT NULL CHECK (length(branch) = 16),
	revoked_at timestamptz NOT NULL,
	revoked_by bigint      REFERENCES users (id), -- NULL: the branch revoked itself
	PRIMARY KEY (token_id, branch)
);

-- How many branches of the token are revoked: read with the token on every
-- verification, so that a token with none costs no second read, and kept
-- by RevokeBranch in the same transaction as its insert.
ALTER TABLE tokens ADD COLUMN revoked_branches integer NOT NULL DEFAULT 0;

-- NULL for the revocation of a whole token.
ALTER TABLE revocations ADD COLUMN branch bytea CHECK (branch IS NULL OR length(branch) = 16);
