-- Teams: invitations to organizations, and each user's last login for the
-- member list.

ALTER TABLE users ADD COLUMN last_login_at INTEGER;

-- Logins before this migration: the latest session each user started.
UPDATE users SET last_login_at = (SELECT max(created_at) FROM sessions WHERE sessions.user_id = users.id);

CREATE TABLE invitations (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	org_id       INTEGER NOT NULL REFERENCES organizations (id),
	email        TEXT    NOT NULL,
	email_key    TEXT    NOT NULL, -- store.EmailKey(email)
	role         TEXT    NOT NULL CHECK (role IN ('admin', 'member')),
	code_hash    TEXT    NOT NULL UNIQUE, -- never the code itself
	invited_by   INTEGER NOT NULL REFERENCES users (id),
	created_at   INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL,
	accepted_at  INTEGER,
	accepted_by  INTEGER REFERENCES users (id),
	cancelled_at INTEGER
) STRICT;

-- At most one open invitation per organization and email.
CREATE UNIQUE INDEX invitations_open ON invitations (org_id, email_key)
	WHERE accepted_at IS NULL AND cancelled_at IS NULL;
CREATE INDEX invitations_org ON invitations (org_id, created_at, id);

-- Removing a member finds the tokens they created in the organization.
CREATE INDEX tokens_creator ON tokens (org_id, created_by);
