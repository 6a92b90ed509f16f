-- Machines of the Machines API and their event logs, and an index for
-- finding apps by name across organizations.

CREATE INDEX apps_name ON apps (name, org_id);

CREATE TABLE machines (
	id               text        PRIMARY KEY, -- 14 lowercase hex characters
	app_id           bigint      NOT NULL REFERENCES apps (id),
	name             text        NOT NULL,
	state            text        NOT NULL CHECK (state IN ('created', 'starting', 'started', 'stopping', 'stopped',
	                             'suspending', 'suspended', 'replacing', 'destroying', 'destroyed')),
	-- The state a machine in transition reaches at next_at; '' at rest.
	next_state       text        NOT NULL CHECK (next_state IN ('', 'created', 'starting', 'started', 'stopping',
	                             'stopped', 'suspending', 'suspended', 'replacing', 'destroying', 'destroyed')),
	next_at          timestamptz,
	region           text        NOT NULL,
	image_ref        text        NOT NULL,
	instance_id      text        NOT NULL,
	private_ip       text        NOT NULL,
	config           text        NOT NULL, -- a JSON object, kept byte for byte
	metadata         text        NOT NULL, -- a JSON object of strings
	created_at       timestamptz NOT NULL,
	updated_at       timestamptz NOT NULL,
	lease_nonce      text        NOT NULL DEFAULT '', -- '' for no lease
	lease_owner      text        NOT NULL DEFAULT '',
	lease_version    text        NOT NULL DEFAULT '',
	lease_expires_at timestamptz,
	version          bigint      NOT NULL -- compare-and-set counter
);

CREATE INDEX machines_app ON machines (app_id, created_at, id);
-- A name is unique among the app's machines that are not destroyed.
CREATE UNIQUE INDEX machines_name ON machines (app_id, name) WHERE state <> 'destroyed';

CREATE TABLE machine_events (
	seq        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	machine_id text        NOT NULL REFERENCES machines (id),
	type       text        NOT NULL,
	status     text        NOT NULL,
	source     text        NOT NULL,
	at         timestamptz NOT NULL
);

CREATE INDEX machine_events_machine ON machine_events (machine_id, seq);
