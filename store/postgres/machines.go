package postgres

// Every change to a machine first locks its row (SELECT … FOR UPDATE), so
// that the version it compares is the one it replaces and concurrent
// changes of one machine are serialised; events are inserted under the
// same lock, so their sequence numbers follow the order of the changes.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caveatdev/caveat/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

var _ store.Machines = (*DB)(nil)

// ListAppsByName implements [store.Apps].
func (db *DB) ListAppsByName(ctx context.Context, name string) ([]store.App, error) {
	if !storable(name) {
		return []store.App{}, nil
	}
	rows, err := db.pool.Query(ctx, "SELECT "+appColumns+" FROM apps WHERE name = $1 ORDER BY org_id", name)
	if err != nil {
		return nil, fmt.Errorf("postgres: list apps named %q: %w", name, err)
	}
	apps, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.App, error) { return scanApp(row) })
	if err != nil {
		return nil, fmt.Errorf("postgres: list apps named %q: %w", name, err)
	}
	return nonNil(apps), nil
}

const machineColumns = "id, app_id, name, state, next_state, next_at, region, image_ref, instance_id, private_ip, " +
	"config, metadata, created_at, updated_at, lease_nonce, lease_owner, lease_version, lease_expires_at, version"

func scanMachine(row pgx.Row) (store.Machine, error) {
	var (
		m                store.Machine
		app, version     int64
		nextAt, leaseExp pgtype.Timestamptz
		state, next, md  string
	)
	err := row.Scan(&m.ID, &app, &m.Name, &state, &next, &nextAt, &m.Region, &m.ImageRef, &m.InstanceID,
		&m.PrivateIP, &m.Config, &md, &m.CreatedAt, &m.UpdatedAt, &m.Lease.Nonce, &m.Lease.Owner, &m.Lease.Version,
		&leaseExp, &version)
	if err != nil {
		return store.Machine{}, err
	}
	m.Metadata, err = store.DecodeMetadata(md)
	if err != nil {
		return store.Machine{}, err
	}
	m.AppID, m.State, m.Next, m.NextAt = uint64(app), store.MachineState(state), store.MachineState(next), fromNullTS(nextAt)
	m.CreatedAt, m.UpdatedAt, m.Lease.ExpiresAt, m.Version = m.CreatedAt.UTC(), m.UpdatedAt.UTC(), fromNullTS(leaseExp), uint64(version)
	return m, nil
}

// normalize gives m's times the precision and zone the store returns.
func normalize(m store.Machine) store.Machine {
	m.CreatedAt, m.UpdatedAt = ts(m.CreatedAt), ts(m.UpdatedAt)
	if !m.NextAt.IsZero() {
		m.NextAt = ts(m.NextAt)
	}
	if m.Metadata == nil {
		m.Metadata = map[string]string{}
	}
	return m
}

// CreateMachine implements [store.Machines].
func (db *DB) CreateMachine(ctx context.Context, m store.Machine, events ...store.MachineEvent) (store.Machine, error) {
	if err := m.Validate(); err != nil {
		return store.Machine{}, fmt.Errorf("postgres: create machine: %w", err)
	}
	if err := store.ValidateMachineEvents(events); err != nil {
		return store.Machine{}, fmt.Errorf("postgres: create machine: %w", err)
	}
	m = normalize(m)
	err := db.tx(ctx, func(tx pgx.Tx) error {
		if err := requireRow(ctx, tx, "SELECT 1 FROM apps WHERE id = $1", m.AppID, "app"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO machines ("+machineColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, '', '', '', NULL, 1)",
			m.ID, int64(m.AppID), m.Name, string(m.State), string(m.Next), nullTS(m.NextAt), m.Region, m.ImageRef,
			m.InstanceID, m.PrivateIP, m.Config, store.EncodeMetadata(m.Metadata), m.CreatedAt, m.UpdatedAt)
		if isUnique(err) {
			return fmt.Errorf("machine id or name: %w", store.ErrExists)
		}
		if err != nil {
			return fmt.Errorf("insert machine: %w", err)
		}
		return appendEvents(ctx, tx, m.ID, events)
	})
	if err != nil {
		return store.Machine{}, fmt.Errorf("postgres: create machine %s of app %d: %w", m.ID, m.AppID, err)
	}
	m.Lease, m.Version = store.MachineLease{}, 1
	return m, nil
}

// appendEvents inserts events in order and keeps the newest
// MaxMachineEvents of the machine. The caller holds the machine's row
// lock.
func appendEvents(ctx context.Context, tx pgx.Tx, id string, events []store.MachineEvent) error {
	if len(events) == 0 {
		return nil
	}
	for _, e := range events {
		if _, err := tx.Exec(ctx, "INSERT INTO machine_events (machine_id, type, status, source, at) VALUES ($1, $2, $3, $4, $5)",
			id, e.Type, e.Status, e.Source, ts(e.Timestamp)); err != nil {
			return fmt.Errorf("insert event: %w", err)
		}
	}
	_, err := tx.Exec(ctx, `DELETE FROM machine_events WHERE machine_id = $1 AND seq < (
		SELECT min(seq) FROM (SELECT seq FROM machine_events WHERE machine_id = $1 ORDER BY seq DESC LIMIT $2) newest)`,
		id, store.MaxMachineEvents)
	if err != nil {
		return fmt.Errorf("prune events: %w", err)
	}
	return nil
}

// getMachine reads a machine through q, locking its row when lock.
func getMachine(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, appID uint64, id string, lock bool) (store.Machine, error) {
	app, ok := dbID(appID)
	if !ok || !store.ValidMachineID(id) {
		return store.Machine{}, fmt.Errorf("machine %q: %w", id, store.ErrNotFound)
	}
	query := "SELECT " + machineColumns + " FROM machines WHERE id = $1 AND app_id = $2"
	if lock {
		query += " FOR UPDATE"
	}
	m, err := scanMachine(q.QueryRow(ctx, query, id, app))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Machine{}, fmt.Errorf("machine %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Machine{}, fmt.Errorf("read machine %s: %w", id, err)
	}
	return m, nil
}

// GetMachine implements [store.Machines].
func (db *DB) GetMachine(ctx context.Context, appID uint64, id string) (store.Machine, error) {
	m, err := getMachine(ctx, db.pool, appID, id, false)
	if err != nil {
		return store.Machine{}, fmt.Errorf("postgres: get machine of app %d: %w", appID, err)
	}
	return m, nil
}

// ListMachines implements [store.Machines].
func (db *DB) ListMachines(ctx context.Context, appID uint64, includeDestroyed bool, p store.Page) ([]store.Machine, string, error) {
	if err := p.Validate(); err != nil {
		return nil, "", fmt.Errorf("postgres: list machines: %w", err)
	}
	after, from, err := store.ParseCreatedCursor(store.CursorMachines, p.After)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list machines: %w", err)
	}
	app, ok := dbID(appID)
	if !ok || (from && !storable(after.ID)) {
		return []store.Machine{}, "", nil
	}
	var q query
	q.add("SELECT "+machineColumns+" FROM machines WHERE app_id = ?", app)
	if !includeDestroyed {
		q.add(" AND state <> 'destroyed'")
	}
	if from {
		q.add(" AND (created_at, id) > (?, ?)", ts(after.CreatedAt), after.ID)
	}
	q.add(" ORDER BY created_at, id LIMIT ?", p.Limit+1)
	rows, err := db.pool.Query(ctx, q.sql, q.oneShot()...)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list machines of app %d: %w", appID, err)
	}
	ms, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Machine, error) { return scanMachine(row) })
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list machines of app %d: %w", appID, err)
	}
	ms, next := store.PageOf(nonNil(ms), p, store.MachineCursor)
	return ms, next, nil
}

// UpdateMachine implements [store.Machines].
func (db *DB) UpdateMachine(ctx context.Context, m store.Machine, events ...store.MachineEvent) (store.Machine, error) {
	if err := m.Validate(); err != nil {
		return store.Machine{}, fmt.Errorf("postgres: update machine: %w", err)
	}
	if err := store.ValidateMachineEvents(events); err != nil {
		return store.Machine{}, fmt.Errorf("postgres: update machine: %w", err)
	}
	m = normalize(m)
	var out store.Machine
	err := db.tx(ctx, func(tx pgx.Tx) error {
		cur, err := getMachine(ctx, tx, m.AppID, m.ID, true)
		if err != nil {
			return err
		}
		if cur.Version != m.Version {
			return fmt.Errorf("machine %s is at version %d, not %d: %w", m.ID, cur.Version, m.Version, store.ErrStale)
		}
		_, err = tx.Exec(ctx, `UPDATE machines SET name = $1, state = $2, next_state = $3, next_at = $4, region = $5,
			image_ref = $6, instance_id = $7, private_ip = $8, config = $9, metadata = $10, updated_at = $11,
			version = version + 1 WHERE id = $12`,
			m.Name, string(m.State), string(m.Next), nullTS(m.NextAt), m.Region, m.ImageRef, m.InstanceID, m.PrivateIP,
			m.Config, store.EncodeMetadata(m.Metadata), m.UpdatedAt, m.ID)
		if isUnique(err) {
			return fmt.Errorf("machine name %q: %w", m.Name, store.ErrExists)
		}
		if err != nil {
			return fmt.Errorf("update machine %s: %w", m.ID, err)
		}
		if err := appendEvents(ctx, tx, m.ID, events); err != nil {
			return err
		}
		out = m
		out.CreatedAt, out.Lease, out.Version = cur.CreatedAt, cur.Lease, cur.Version+1
		return nil
	})
	if err != nil {
		return store.Machine{}, fmt.Errorf("postgres: update machine of app %d: %w", m.AppID, err)
	}
	return out, nil
}

// ListMachineEvents implements [store.Machines].
func (db *DB) ListMachineEvents(ctx context.Context, appID uint64, id string, limit int) ([]store.MachineEvent, error) {
	if limit < 1 {
		return nil, fmt.Errorf("postgres: list machine events: limit %d: %w", limit, store.ErrInvalid)
	}
	app, ok := dbID(appID)
	if !ok || !store.ValidMachineID(id) {
		return nil, fmt.Errorf("postgres: list events of machine %q: %w", id, store.ErrNotFound)
	}
	// The machine's existence and its events are read in one statement,
	// so that an unknown machine is told apart from one without events.
	rows, err := db.pool.Query(ctx, `SELECT e.type, e.status, e.source, e.at FROM machines m
		LEFT JOIN machine_events e ON e.machine_id = m.id
		WHERE m.id = $1 AND m.app_id = $2 ORDER BY e.seq DESC LIMIT $3`, id, app, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: list events of machine %s: %w", id, err)
	}
	defer rows.Close()
	found := false
	events := []store.MachineEvent{}
	for rows.Next() {
		found = true
		var (
			typ, status, source pgtype.Text
			at                  pgtype.Timestamptz
		)
		if err := rows.Scan(&typ, &status, &source, &at); err != nil {
			return nil, fmt.Errorf("postgres: list events of machine %s: %w", id, err)
		}
		if !at.Valid {
			continue // the machine has no events
		}
		events = append(events, store.MachineEvent{Type: typ.String, Status: status.String, Source: source.String, Timestamp: at.Time.UTC()})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list events of machine %s: %w", id, err)
	}
	if !found {
		return nil, fmt.Errorf("postgres: list events of machine %s: %w", id, store.ErrNotFound)
	}
	return events, nil
}

// leaseChange runs change on the locked machine; change returns the new
// lease, or an error. The machine's version goes up.
func (db *DB) leaseChange(ctx context.Context, what string, appID uint64, id string,
	change func(cur store.Machine) (store.MachineLease, error)) (store.Machine, error) {
	var out store.Machine
	err := db.tx(ctx, func(tx pgx.Tx) error {
		cur, err := getMachine(ctx, tx, appID, id, true)
		if err != nil {
			return err
		}
		l, err := change(cur)
		if err != nil {
			out = cur
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE machines SET lease_nonce = $1, lease_owner = $2, lease_version = $3,
			lease_expires_at = $4, version = version + 1 WHERE id = $5`,
			l.Nonce, l.Owner, l.Version, nullTS(l.ExpiresAt), id); err != nil {
			return fmt.Errorf("update lease: %w", err)
		}
		out = cur
		out.Lease = l
		if !l.ExpiresAt.IsZero() {
			out.Lease.ExpiresAt = ts(l.ExpiresAt)
		}
		out.Version++
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("postgres: %s of machine %s: %w", what, id, err)
	}
	return out, nil
}

// AcquireMachineLease implements [store.Machines].
func (db *DB) AcquireMachineLease(ctx context.Context, appID uint64, id string, l store.MachineLease, now time.Time) (store.Machine, error) {
	if err := l.Validate(); err != nil {
		return store.Machine{}, fmt.Errorf("postgres: acquire lease: %w", err)
	}
	if err := store.CheckTime("now", now); err != nil {
		return store.Machine{}, fmt.Errorf("postgres: acquire lease: %w", err)
	}
	return db.leaseChange(ctx, "acquire lease", appID, id, func(cur store.Machine) (store.MachineLease, error) {
		if cur.Lease.Active(now) {
			return l, store.ErrLeased
		}
		return l, nil
	})
}

// RefreshMachineLease implements [store.Machines].
func (db *DB) RefreshMachineLease(ctx context.Context, appID uint64, id, nonce string, expiresAt, now time.Time) (store.Machine, error) {
	for _, t := range []struct {
		name string
		t    time.Time
	}{{"expires at", expiresAt}, {"now", now}} {
		if err := store.CheckTime(t.name, t.t); err != nil {
			return store.Machine{}, fmt.Errorf("postgres: refresh lease: %w", err)
		}
	}
	return db.leaseChange(ctx, "refresh lease", appID, id, func(cur store.Machine) (store.MachineLease, error) {
		if err := store.CheckLeaseNonce(cur.Lease, nonce, now); err != nil {
			return cur.Lease, err
		}
		l := cur.Lease
		l.ExpiresAt = expiresAt
		return l, nil
	})
}

// ReleaseMachineLease implements [store.Machines].
func (db *DB) ReleaseMachineLease(ctx context.Context, appID uint64, id, nonce string, now time.Time) (store.Machine, error) {
	if err := store.CheckTime("now", now); err != nil {
		return store.Machine{}, fmt.Errorf("postgres: release lease: %w", err)
	}
	return db.leaseChange(ctx, "release lease", appID, id, func(cur store.Machine) (store.MachineLease, error) {
		if err := store.CheckLeaseNonce(cur.Lease, nonce, now); err != nil {
			return cur.Lease, err
		}
		return store.MachineLease{}, nil
	})
}

// metadataChange runs change on the locked machine's metadata, if the
// machine is at version.
func (db *DB) metadataChange(ctx context.Context, what string, appID uint64, id string, version uint64, at time.Time,
	change func(md map[string]string) error) (store.Machine, error) {
	if err := store.CheckTime("updated at", at); err != nil {
		return store.Machine{}, fmt.Errorf("postgres: %s: %w", what, err)
	}
	at = ts(at)
	var out store.Machine
	err := db.tx(ctx, func(tx pgx.Tx) error {
		cur, err := getMachine(ctx, tx, appID, id, true)
		if err != nil {
			return err
		}
		if cur.Version != version {
			return fmt.Errorf("machine %s is at version %d, not %d: %w", id, cur.Version, version, store.ErrStale)
		}
		if err := change(cur.Metadata); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE machines SET metadata = $1, updated_at = $2, version = version + 1 WHERE id = $3",
			store.EncodeMetadata(cur.Metadata), at, id); err != nil {
			return fmt.Errorf("update metadata: %w", err)
		}
		out = cur
		out.UpdatedAt = at
		out.Version++
		return nil
	})
	if err != nil {
		return store.Machine{}, fmt.Errorf("postgres: %s of machine %s: %w", what, id, err)
	}
	return out, nil
}

// SetMachineMetadata implements [store.Machines].
func (db *DB) SetMachineMetadata(ctx context.Context, appID uint64, id string, version uint64, key, value string, at time.Time) (store.Machine, error) {
	return db.metadataChange(ctx, "set metadata", appID, id, version, at, func(md map[string]string) error {
		return store.SetMetadataEntry(md, key, value)
	})
}

// DeleteMachineMetadata implements [store.Machines].
func (db *DB) DeleteMachineMetadata(ctx context.Context, appID uint64, id string, version uint64, key string, at time.Time) (store.Machine, error) {
	return db.metadataChange(ctx, "delete metadata", appID, id, version, at, func(md map[string]string) error {
		return store.DeleteMetadataEntry(md, key)
	})
}
