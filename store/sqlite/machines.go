package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/caveatdev/caveat/store"
)

var _ store.Machines = (*DB)(nil)

// ListAppsByName implements [store.Apps].
func (db *DB) ListAppsByName(ctx context.Context, name string) ([]store.App, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT "+appColumns+" FROM apps WHERE name = ? ORDER BY org_id", name)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list apps named %q: %w", name, err)
	}
	defer rows.Close()
	apps := []store.App{}
	for rows.Next() {
		a, err := scanApp(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list apps named %q: %w", name, err)
		}
		apps = append(apps, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list apps named %q: %w", name, err)
	}
	return apps, nil
}

const machineColumns = "id, app_id, name, state, next_state, next_at, region, image_ref, instance_id, private_ip, " +
	"config, metadata, created_at, updated_at, lease_nonce, lease_owner, lease_version, lease_expires_at, version"

func scanMachine(row interface{ Scan(...any) error }) (store.Machine, error) {
	var (
		m                      store.Machine
		app, cat, uat, version int64
		nextAt, leaseExp       sql.NullInt64
		state, next, md        string
	)
	err := row.Scan(&m.ID, &app, &m.Name, &state, &next, &nextAt, &m.Region, &m.ImageRef, &m.InstanceID,
		&m.PrivateIP, &m.Config, &md, &cat, &uat, &m.Lease.Nonce, &m.Lease.Owner, &m.Lease.Version, &leaseExp, &version)
	if err != nil {
		return store.Machine{}, err
	}
	m.Metadata, err = store.DecodeMetadata(md)
	if err != nil {
		return store.Machine{}, err
	}
	m.AppID, m.State, m.Next, m.NextAt = uint64(app), store.MachineState(state), store.MachineState(next), fromNullTS(nextAt)
	m.CreatedAt, m.UpdatedAt, m.Lease.ExpiresAt, m.Version = fromTS(cat), fromTS(uat), fromNullTS(leaseExp), uint64(version)
	return m, nil
}

// normalize gives m's times the precision and zone the store returns.
func normalize(m store.Machine) store.Machine {
	m.CreatedAt = m.CreatedAt.UTC().Truncate(time.Microsecond)
	m.UpdatedAt = m.UpdatedAt.UTC().Truncate(time.Microsecond)
	if !m.NextAt.IsZero() {
		m.NextAt = m.NextAt.UTC().Truncate(time.Microsecond)
	}
	if m.Metadata == nil {
		m.Metadata = map[string]string{}
	}
	return m
}

// CreateMachine implements [store.Machines].
func (db *DB) CreateMachine(ctx context.Context, m store.Machine, events ...store.MachineEvent) (store.Machine, error) {
	if err := m.Validate(); err != nil {
		return store.Machine{}, fmt.Errorf("sqlite: create machine: %w", err)
	}
	if err := store.ValidateMachineEvents(events); err != nil {
		return store.Machine{}, fmt.Errorf("sqlite: create machine: %w", err)
	}
	var out store.Machine
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := requireRow(ctx, tx, "SELECT 1 FROM apps WHERE id = ?", m.AppID, "app"); err != nil {
			return err
		}
		m = normalize(m)
		_, err := tx.ExecContext(ctx, "INSERT INTO machines ("+machineColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', '', '', NULL, 1)",
			m.ID, int64(m.AppID), m.Name, string(m.State), string(m.Next), nullTS(m.NextAt), m.Region, m.ImageRef,
			m.InstanceID, m.PrivateIP, m.Config, store.EncodeMetadata(m.Metadata), ts(m.CreatedAt), ts(m.UpdatedAt))
		if isUnique(err) {
			return fmt.Errorf("machine id or name: %w", store.ErrExists)
		}
		if err != nil {
			return fmt.Errorf("insert machine: %w", err)
		}
		if err := appendEvents(ctx, tx, m.ID, events); err != nil {
			return err
		}
		out = m
		out.Lease, out.Version = store.MachineLease{}, 1
		return nil
	})
	if err != nil {
		return store.Machine{}, fmt.Errorf("sqlite: create machine %s of app %d: %w", m.ID, m.AppID, err)
	}
	return out, nil
}

// appendEvents inserts events in order and keeps the newest
// MaxMachineEvents of the machine.
func appendEvents(ctx context.Context, tx *sql.Tx, id string, events []store.MachineEvent) error {
	if len(events) == 0 {
		return nil
	}
	for _, e := range events {
		if _, err := tx.ExecContext(ctx, "INSERT INTO machine_events (machine_id, type, status, source, at) VALUES (?, ?, ?, ?, ?)",
			id, e.Type, e.Status, e.Source, ts(e.Timestamp)); err != nil {
			return fmt.Errorf("insert event: %w", err)
		}
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM machine_events WHERE machine_id = ? AND seq < (
		SELECT min(seq) FROM (SELECT seq FROM machine_events WHERE machine_id = ? ORDER BY seq DESC LIMIT ?))`,
		id, id, store.MaxMachineEvents)
	if err != nil {
		return fmt.Errorf("prune events: %w", err)
	}
	return nil
}

// getMachine reads a machine through q.
func getMachine(ctx context.Context, q queryer, appID uint64, id string) (store.Machine, error) {
	app, ok := dbID(appID)
	if !ok || !store.ValidMachineID(id) {
		return store.Machine{}, fmt.Errorf("machine %q: %w", id, store.ErrNotFound)
	}
	m, err := scanMachine(q.QueryRowContext(ctx, "SELECT "+machineColumns+" FROM machines WHERE id = ? AND app_id = ?", id, app))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Machine{}, fmt.Errorf("machine %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Machine{}, fmt.Errorf("read machine %s: %w", id, err)
	}
	return m, nil
}

// GetMachine implements [store.Machines].
func (db *DB) GetMachine(ctx context.Context, appID uint64, id string) (store.Machine, error) {
	m, err := getMachine(ctx, db.r, appID, id)
	if err != nil {
		return store.Machine{}, fmt.Errorf("sqlite: get machine of app %d: %w", appID, err)
	}
	return m, nil
}

// ListMachines implements [store.Machines].
func (db *DB) ListMachines(ctx context.Context, appID uint64, includeDestroyed bool, p store.Page) ([]store.Machine, string, error) {
	if err := p.Validate(); err != nil {
		return nil, "", fmt.Errorf("sqlite: list machines: %w", err)
	}
	after, from, err := store.ParseCreatedCursor(store.CursorMachines, p.After)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: list machines: %w", err)
	}
	app, ok := dbID(appID)
	if !ok {
		return []store.Machine{}, "", nil
	}
	q, args := "SELECT "+machineColumns+" FROM machines WHERE app_id = ?", []any{app}
	if !includeDestroyed {
		q += " AND state <> 'destroyed'"
	}
	if from {
		q, args = q+" AND (created_at, id) > (?, ?)", append(args, ts(after.CreatedAt), after.ID)
	}
	rows, err := db.r.QueryContext(ctx, q+" ORDER BY created_at, id LIMIT ?", append(args, p.Limit+1)...)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: list machines of app %d: %w", appID, err)
	}
	defer rows.Close()
	ms := []store.Machine{}
	for rows.Next() {
		m, err := scanMachine(rows)
		if err != nil {
			return nil, "", fmt.Errorf("sqlite: list machines of app %d: %w", appID, err)
		}
		ms = append(ms, m)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("sqlite: list machines of app %d: %w", appID, err)
	}
	ms, next := store.PageOf(ms, p, store.MachineCursor)
	return ms, next, nil
}

// UpdateMachine implements [store.Machines].
func (db *DB) UpdateMachine(ctx context.Context, m store.Machine, events ...store.MachineEvent) (store.Machine, error) {
	if err := m.Validate(); err != nil {
		return store.Machine{}, fmt.Errorf("sqlite: update machine: %w", err)
	}
	if err := store.ValidateMachineEvents(events); err != nil {
		return store.Machine{}, fmt.Errorf("sqlite: update machine: %w", err)
	}
	m = normalize(m)
	var out store.Machine
	err := db.write(ctx, func(tx *sql.Tx) error {
		cur, err := getMachine(ctx, tx, m.AppID, m.ID)
		if err != nil {
			return err
		}
		if cur.Version != m.Version {
			return fmt.Errorf("machine %s is at version %d, not %d: %w", m.ID, cur.Version, m.Version, store.ErrStale)
		}
		_, err = tx.ExecContext(ctx, `UPDATE machines SET name = ?, state = ?, next_state = ?, next_at = ?, region = ?,
			image_ref = ?, instance_id = ?, private_ip = ?, config = ?, metadata = ?, updated_at = ?, version = version + 1
			WHERE id = ?`,
			m.Name, string(m.State), string(m.Next), nullTS(m.NextAt), m.Region, m.ImageRef, m.InstanceID, m.PrivateIP,
			m.Config, store.EncodeMetadata(m.Metadata), ts(m.UpdatedAt), m.ID)
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
		return store.Machine{}, fmt.Errorf("sqlite: update machine of app %d: %w", m.AppID, err)
	}
	return out, nil
}

// ListMachineEvents implements [store.Machines].
func (db *DB) ListMachineEvents(ctx context.Context, appID uint64, id string, limit int) ([]store.MachineEvent, error) {
	if limit < 1 {
		return nil, fmt.Errorf("sqlite: list machine events: limit %d: %w", limit, store.ErrInvalid)
	}
	app, ok := dbID(appID)
	if !ok || !store.ValidMachineID(id) {
		return nil, fmt.Errorf("sqlite: list events of machine %q: %w", id, store.ErrNotFound)
	}
	// The machine's existence and its events are read in one statement,
	// so that an unknown machine is told apart from one without events.
	rows, err := db.r.QueryContext(ctx, `SELECT e.type, e.status, e.source, e.at FROM machines m
		LEFT JOIN machine_events e ON e.machine_id = m.id
		WHERE m.id = ? AND m.app_id = ? ORDER BY e.seq DESC LIMIT ?`, id, app, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list events of machine %s: %w", id, err)
	}
	defer rows.Close()
	found := false
	events := []store.MachineEvent{}
	for rows.Next() {
		found = true
		var (
			typ, status, source sql.NullString
			at                  sql.NullInt64
		)
		if err := rows.Scan(&typ, &status, &source, &at); err != nil {
			return nil, fmt.Errorf("sqlite: list events of machine %s: %w", id, err)
		}
		if !at.Valid {
			continue // the machine has no events
		}
		events = append(events, store.MachineEvent{Type: typ.String, Status: status.String, Source: source.String, Timestamp: fromTS(at.Int64)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list events of machine %s: %w", id, err)
	}
	if !found {
		return nil, fmt.Errorf("sqlite: list events of machine %s: %w", id, store.ErrNotFound)
	}
	return events, nil
}

// leaseChange runs change on the machine in a write transaction; change
// returns the new lease, or an error. The machine's version goes up.
func (db *DB) leaseChange(ctx context.Context, what string, appID uint64, id string,
	change func(cur store.Machine) (store.MachineLease, error)) (store.Machine, error) {
	var out store.Machine
	err := db.write(ctx, func(tx *sql.Tx) error {
		cur, err := getMachine(ctx, tx, appID, id)
		if err != nil {
			return err
		}
		l, err := change(cur)
		if err != nil {
			out = cur
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE machines SET lease_nonce = ?, lease_owner = ?, lease_version = ?,
			lease_expires_at = ?, version = version + 1 WHERE id = ?`,
			l.Nonce, l.Owner, l.Version, nullTS(l.ExpiresAt), id); err != nil {
			return fmt.Errorf("update lease: %w", err)
		}
		out = cur
		out.Lease = l
		if !l.ExpiresAt.IsZero() {
			out.Lease.ExpiresAt = fromTS(ts(l.ExpiresAt))
		}
		out.Version++
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("sqlite: %s of machine %s: %w", what, id, err)
	}
	return out, nil
}

// AcquireMachineLease implements [store.Machines].
func (db *DB) AcquireMachineLease(ctx context.Context, appID uint64, id string, l store.MachineLease, now time.Time) (store.Machine, error) {
	if err := l.Validate(); err != nil {
		return store.Machine{}, fmt.Errorf("sqlite: acquire lease: %w", err)
	}
	if err := store.CheckTime("now", now); err != nil {
		return store.Machine{}, fmt.Errorf("sqlite: acquire lease: %w", err)
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
			return store.Machine{}, fmt.Errorf("sqlite: refresh lease: %w", err)
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
		return store.Machine{}, fmt.Errorf("sqlite: release lease: %w", err)
	}
	return db.leaseChange(ctx, "release lease", appID, id, func(cur store.Machine) (store.MachineLease, error) {
		if err := store.CheckLeaseNonce(cur.Lease, nonce, now); err != nil {
			return cur.Lease, err
		}
		return store.MachineLease{}, nil
	})
}

// metadataChange runs change on the machine's metadata in a write
// transaction, if the machine is at version.
func (db *DB) metadataChange(ctx context.Context, what string, appID uint64, id string, version uint64, at time.Time,
	change func(md map[string]string) error) (store.Machine, error) {
	if err := store.CheckTime("updated at", at); err != nil {
		return store.Machine{}, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	var out store.Machine
	err := db.write(ctx, func(tx *sql.Tx) error {
		cur, err := getMachine(ctx, tx, appID, id)
		if err != nil {
			return err
		}
		if cur.Version != version {
			return fmt.Errorf("machine %s is at version %d, not %d: %w", id, cur.Version, version, store.ErrStale)
		}
		if err := change(cur.Metadata); err != nil {
			return err
		}
		at = at.UTC().Truncate(time.Microsecond)
		if _, err := tx.ExecContext(ctx, "UPDATE machines SET metadata = ?, updated_at = ?, version = version + 1 WHERE id = ?",
			store.EncodeMetadata(cur.Metadata), ts(at), id); err != nil {
			return fmt.Errorf("update metadata: %w", err)
		}
		out = cur
		out.UpdatedAt = at
		out.Version++
		return nil
	})
	if err != nil {
		return store.Machine{}, fmt.Errorf("sqlite: %s of machine %s: %w", what, id, err)
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
