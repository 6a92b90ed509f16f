-- Machines of the Machines API and their event logs, and an index for
-- finding apps by name across organizations.

CREATE INDEX apps_name ON apps (name, org_id);

CREATE TABLE machines (
	id               TEXT    PRIMARY KEY, -- 14 lowercase hex characters
	app_id           INTEGER NOT NULL REFERENCES apps (id),
	name             TEXT    NOT NULL,
	state            TEXT    NOT NULL CHECK (state IN ('created', 'starting', 'started', 'stopping', 'stopped',
	                         'suspending', 'suspended', 'replacing', 'destroying', 'destroyed')),
	-- The state a machine in transition reaches at next_at; '' at rest.
	next_state       TEXT    NOT NULL CHECK (next_state IN ('', 'created', 'starting', 'started', 'stopping',
	                         'stopped', 'suspending', 'suspended', 'replacing', 'destroying', 'destroyed')),
	next_at          INTEGER,
	region           TEXT    NOT NULL,
	image_ref        TEXT    NOT NULL,
	instance_id      TEXT    NOT NULL,
	private_ip       TEXT    NOT NULL,
	config           TEXT    NOT NULL, -- a JSON object
	metadata         TEXT    NOT NULL, -- a JSON object of strings
	created_at       INTEGER NOT NULL,
	updated_at       INTEGER NOT NULL,
	lease_nonce      TEXT    NOT NULL DEFAULT '', -- '' for no lease
	lease_owner      TEXT    NOT NULL DEFAULT '',
	lease_version    TEXT    NOT NULL DEFAULT '',
	lease_expires_at INTEGER,
	version          INTEGER NOT NULL -- compare-and-set counter
) STRICT;

CREATE INDEX machines_app ON machines (app_id, created_at, id);
-- A name is unique among the app's machines that are not destroyed.
CREATE UNIQUE INDEX machines_name ON machines (app_id, name) WHERE state <> 'destroyed';

CREATE TABLE machine_events (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	machine_id TEXT    NOT NULL REFERENCES machines (id),
	type       TEXT    NOT NULL,
	status     TEXT    NOT NULL,
	source     TEXT    NOT NULL,
	at         INTEGER NOT NULL
) STRICT;

CREATE INDEX machine_events_machine ON machine_events (machine_id, seq);
