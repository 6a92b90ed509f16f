-- The first schema. Times are timestamptz (microsecond precision); NULL
-- stands for "none" where a time is optional.

CREATE TABLE users (
	id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	email         text        NOT NULL,
	email_key     text        NOT NULL UNIQUE, -- store.EmailKey(email)
	password_hash text        NOT NULL,
	created_at    timestamptz NOT NULL
);

CREATE TABLE organizations (
	id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	slug       text        NOT NULL UNIQUE,
	created_at timestamptz NOT NULL
);

CREATE TABLE memberships (
	org_id     bigint      NOT NULL REFERENCES organizations (id),
	user_id    bigint      NOT NULL REFERENCES users (id),
	role       text        NOT NULL CHECK (role IN ('admin', 'member')),
	created_at timestamptz NOT NULL,
	PRIMARY KEY (org_id, user_id)
);

CREATE INDEX memberships_user ON memberships (user_id, org_id);

CREATE TABLE sessions (
	id         text        PRIMARY KEY,
	user_id    bigint      NOT NULL REFERENCES users (id),
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	revoked_at timestamptz
);

CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE root_keys (
	kid        bytea       PRIMARY KEY,
	org_id     bigint      NOT NULL REFERENCES organizations (id),
	sealed     bytea       NOT NULL,
	state      text        NOT NULL CHECK (state IN ('active', 'rotated', 'retired')),
	created_at timestamptz NOT NULL,
	rotated_at timestamptz,
	retired_at timestamptz
);

-- At most one key mints for an organization.
CREATE UNIQUE INDEX root_keys_one_active ON root_keys (org_id) WHERE state = 'active';
CREATE INDEX root_keys_org ON root_keys (org_id, created_at, kid);

CREATE TABLE apps (
	id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	org_id     bigint      NOT NULL REFERENCES organizations (id),
	name       text        COLLATE "C" NOT NULL, -- listed in byte order, as SQLite does
	created_at timestamptz NOT NULL,
	UNIQUE (org_id, name),
	UNIQUE (id, org_id) -- the target of tokens' (app_id, org_id) reference
);

CREATE TABLE tokens (
	id           text        COLLATE "C" PRIMARY KEY, -- the nonce UUID, canonical form
	name         text        NOT NULL,
	profile      text        NOT NULL,
	org_id       bigint      NOT NULL REFERENCES organizations (id),
	app_id       bigint,
	created_by   bigint      NOT NULL REFERENCES users (id),
	created_at   timestamptz NOT NULL,
	expires_at   timestamptz,
	revoked_at   timestamptz,
	last_used_at timestamptz,
	-- A token's app belongs to the token's organization.
	FOREIGN KEY (app_id, org_id) REFERENCES apps (id, org_id)
);

CREATE INDEX tokens_org ON tokens (org_id, created_at, id);
CREATE INDEX tokens_app ON tokens (app_id, created_at, id) WHERE app_id IS NOT NULL;

-- The revocation feed: one row per revocation, in cursor (seq) order.
-- Writers take a transaction-level advisory lock before inserting here, so
-- rows commit in seq order and a poller never skips one (see revokeLock).
CREATE TABLE revocations (
	seq        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	token_id   text        NOT NULL REFERENCES tokens (id),
	org_id     bigint      NOT NULL,
	revoked_at timestamptz NOT NULL
);
