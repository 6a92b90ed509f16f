-- State that replicas share for minutes (browser logins, third-party
-- flows, login throttles), the leases of scheduled work, and the indexes
-- that housekeeping deletes by.

-- Pending browser logins of `caveat auth login --web`: keys are hashes of
-- the two secrets, never the secrets.
CREATE TABLE web_logins (
	poll_key   bytea       PRIMARY KEY,
	user_key   bytea       NOT NULL UNIQUE,
	addr       text        NOT NULL,
	started_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	user_id    bigint -- NULL until the user has logged in
);

CREATE INDEX web_logins_expires ON web_logins (expires_at);

-- Poll and user-interactive flows of the login discharger (tp.Flow): the
-- ticket is stored sealed, the discharge never, only its caveats.
CREATE TABLE tp_flows (
	id          bytea       PRIMARY KEY,
	user_key    bytea       UNIQUE, -- NULL for a poll flow
	ticket      bytea       NOT NULL,
	ticket_hash bytea       NOT NULL, -- SHA-256 of the ticket, for the per-ticket bound
	binding     bytea,                -- NULL: unbound
	expires_at  timestamptz NOT NULL,
	state       smallint    NOT NULL,
	caveats     bytea       NOT NULL,
	error       text        NOT NULL
);

CREATE INDEX tp_flows_expires ON tp_flows (expires_at);
CREATE INDEX tp_flows_ticket ON tp_flows (ticket_hash, expires_at);

-- Login throttles: one token bucket per row. Times are Unix nanoseconds,
-- so that every replica computes exactly what one process would.
CREATE TABLE throttle_buckets (
	key        bytea            PRIMARY KEY, -- SHA-256 of limiter, NUL, key
	tokens     double precision NOT NULL,
	updated_ns bigint           NOT NULL,
	full_ns    bigint           -- when it is full again; NULL: never
);

CREATE INDEX throttle_buckets_full ON throttle_buckets (full_ns);

-- One row per lease: of several replicas, the holder does the work.
CREATE TABLE leases (
	name       text        PRIMARY KEY,
	holder     text        NOT NULL,
	expires_at timestamptz NOT NULL
);

-- Housekeeping deletes expired tokens, and their feed entries with them.
CREATE INDEX tokens_expires ON tokens (expires_at, id) WHERE expires_at IS NOT NULL;
CREATE INDEX revocations_token ON revocations (token_id);
