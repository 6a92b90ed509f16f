-- The first schema. Times are INTEGER microseconds since the Unix epoch, in
-- UTC; NULL stands for "none" where a time is optional. Ids assigned by the
-- store use AUTOINCREMENT so that a deleted row's id is never handed out
-- again.

CREATE TABLE users (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	email         TEXT    NOT NULL,
	email_key     TEXT    NOT NULL UNIQUE, -- store.EmailKey(email)
	password_hash TEXT    NOT NULL,
	created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE organizations (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	slug       TEXT    NOT NULL UNIQUE,
	created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE memberships (
	org_id     INTEGER NOT NULL REFERENCES organizations (id),
	user_id    INTEGER NOT NULL REFERENCES users (id),
	role       TEXT    NOT NULL CHECK (role IN ('admin', 'member')),
	created_at INTEGER NOT NULL,
	PRIMARY KEY (org_id, user_id)
) STRICT;

CREATE INDEX memberships_user ON memberships (user_id, org_id);

CREATE TABLE sessions (
	id         TEXT    PRIMARY KEY,
	user_id    INTEGER NOT NULL REFERENCES users (id),
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	revoked_at INTEGER
) STRICT;

CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE root_keys (
	kid        BLOB    PRIMARY KEY,
	org_id     INTEGER NOT NULL REFERENCES organizations (id),
	sealed     BLOB    NOT NULL,
	state      TEXT    NOT NULL CHECK (state IN ('active', 'rotated', 'retired')),
	created_at INTEGER NOT NULL,
	rotated_at INTEGER,
	retired_at INTEGER
) STRICT;

-- At most one key mints for an organization.
CREATE UNIQUE INDEX root_keys_one_active ON root_keys (org_id) WHERE state = 'active';
CREATE INDEX root_keys_org ON root_keys (org_id, created_at, kid);

CREATE TABLE apps (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	org_id     INTEGER NOT NULL REFERENCES organizations (id),
	name       TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	UNIQUE (org_id, name),
	UNIQUE (id, org_id) -- the target of tokens' (app_id, org_id) reference
) STRICT;

CREATE TABLE tokens (
	id           TEXT    PRIMARY KEY, -- the nonce UUID, canonical form
	name         TEXT    NOT NULL,
	profile      TEXT    NOT NULL,
	org_id       INTEGER NOT NULL REFERENCES organizations (id),
	app_id       INTEGER,
	created_by   INTEGER NOT NULL REFERENCES users (id),
	created_at   INTEGER NOT NULL,
	expires_at   INTEGER,
	revoked_at   INTEGER,
	last_used_at INTEGER,
	-- A token's app belongs to the token's organization.
	FOREIGN KEY (app_id, org_id) REFERENCES apps (id, org_id)
) STRICT;

CREATE INDEX tokens_org ON tokens (org_id, created_at, id);
CREATE INDEX tokens_app ON tokens (app_id, created_at, id) WHERE app_id IS NOT NULL;

-- The revocation feed: one row per revocation, in cursor (seq) order. SQLite
-- has one writer at a time, so rows commit in seq order.
CREATE TABLE revocations (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	token_id   TEXT    NOT NULL REFERENCES tokens (id),
	org_id     INTEGER NOT NULL,
	revoked_at INTEGER NOT NULL
) STRICT;
