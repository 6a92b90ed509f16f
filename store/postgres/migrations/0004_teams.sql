-- Teams: invitations to organizations, and each user's last login for the
-- member list.

ALTER TABLE users ADD COLUMN last_login_at timestamptz;

-- Logins before this migration: the latest session each user started.
UPDATE users SET last_login_at = (SELECT max(created_at) FROM sessions WHERE sessions.user_id = users.id);

CREATE TABLE invitations (
	id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	org_id       bigint      NOT NULL REFERENCES organizations (id),
	email        text        NOT NULL,
	email_key    text        NOT NULL, -- store.EmailKey(email)
	role         text        NOT NULL CHECK (role IN ('admin', 'member')),
	code_hash    text        NOT NULL UNIQUE, -- never the code itself
	invited_by   bigint      NOT NULL REFERENCES users (id),
	created_at   timestamptz NOT NULL,
	expires_at   timestamptz NOT NULL,
	accepted_at  timestamptz,
	accepted_by  bigint      REFERENCES users (id),
	cancelled_at timestamptz
);

-- At most one open invitation per organization and email.
CREATE UNIQUE INDEX invitations_open ON invitations (org_id, email_key)
	WHERE accepted_at IS NULL AND cancelled_at IS NULL;
CREATE INDEX invitations_org ON invitations (org_id, created_at, id);

-- Removing a member finds the tokens they created in the organization.
CREATE INDEX tokens_creator ON tokens (org_id, created_by);
