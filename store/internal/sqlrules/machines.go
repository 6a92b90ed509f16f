package sqlrules

// Every change to a machine first locks its row (FOR UPDATE on
// PostgreSQL; SQLite has one writer), so that the version it compares is
// the one it replaces and concurrent changes of one machine are
// serialised; events are inserted under the same lock, so their sequence
// numbers follow the order of the changes.

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/caveatdev/caveat/store"
)

const machineColumns = "id, app_id, name, state, next_state, next_at, region, image_ref, instance_id, private_ip, " +
	"config, metadata, created_at, updated_at, lease_nonce, lease_owner, lease_version, lease_expires_at, version"

func scanMachine(row Row) (store.Machine, error) {
	var (
		m  store.Machine
		md string
	)
	err := row.Scan(&m.ID, Num{&m.AppID}, &m.Name, (*string)(&m.State), (*string)(&m.Next), At{&m.NextAt}, &m.Region,
		&m.ImageRef, &m.InstanceID, &m.PrivateIP, &m.Config, &md, At{&m.CreatedAt}, At{&m.UpdatedAt}, &m.Lease.Nonce,
		&m.Lease.Owner, &m.Lease.Version, At{&m.Lease.ExpiresAt}, Num{&m.Version})
	if err != nil {
		return store.Machine{}, err
	}
	m.Metadata, err = store.DecodeMetadata(md)
	return m, err
}

// normalize gives m's times the precision and zone the store returns.
func normalize(m store.Machine) store.Machine {
	m.CreatedAt, m.UpdatedAt = micro(m.CreatedAt), micro(m.UpdatedAt)
	if !m.NextAt.IsZero() {
		m.NextAt = micro(m.NextAt)
	}
	if m.Metadata == nil {
		m.Metadata = map[string]string{}
	}
	return m
}

// prepare checks a machine and the events that come with it, and gives
// its times the precision and zone the store returns.
func prepare(m store.Machine, events []store.MachineEvent) (store.Machine, error) {
	if err := m.Validate(); err != nil {
		return m, err
	}
	if err := store.ValidateMachineEvents(events); err != nil {
		return m, err
	}
	return normalize(m), nil
}

// CreateMachine implements [store.Machines].
func (s *Store) CreateMachine(ctx context.Context, m store.Machine, events ...store.MachineEvent) (store.Machine, error) {
	m, err := prepare(m, events)
	return create(ctx, s, "create machine", err, []ref{{"app", "apps", m.AppID, ""}}, func(tx Conn) (store.Machine, error) {
		err := s.insert(ctx, tx, "machine", "machine id or name", nil,
			"INSERT INTO machines ("+machineColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', '', '', NULL, 1)",
			m.ID, int64(m.AppID), m.Name, string(m.State), string(m.Next), s.nullTS(m.NextAt), m.Region, m.ImageRef,
			m.InstanceID, m.PrivateIP, m.Config, store.EncodeMetadata(m.Metadata), s.ts(m.CreatedAt), s.ts(m.UpdatedAt))
		if err == nil {
			err = s.appendEvents(ctx, tx, m.ID, events)
		}
		m.Lease, m.Version = store.MachineLease{}, 1
		return m, err
	}, "create machine %s of app %d", m.ID, m.AppID)
}

// appendEvents inserts events in order and keeps the newest
// MaxMachineEvents of the machine. The caller holds the machine's row
// lock.
func (s *Store) appendEvents(ctx context.Context, tx Conn, id string, events []store.MachineEvent) error {
	if len(events) == 0 {
		return nil
	}
	for _, e := range events {
		if _, err := tx.Exec(ctx, "INSERT INTO machine_events (machine_id, type, status, source, at) VALUES (?, ?, ?, ?, ?)",
			id, e.Type, e.Status, e.Source, s.ts(e.Timestamp)); err != nil {
			return fmt.Errorf("insert event: %w", err)
		}
	}
	_, err := tx.Exec(ctx, `DELETE FROM machine_events WHERE machine_id = ? AND seq < (
		SELECT min(seq) FROM (SELECT seq FROM machine_events WHERE machine_id = ? ORDER BY seq DESC LIMIT ?) newest)`,
		id, id, store.MaxMachineEvents)
	if err != nil {
		return fmt.Errorf("prune events: %w", err)
	}
	return nil
}

// getMachine reads a machine through q, locking its row with lock, a
// clause of the Dialect.
func getMachine(ctx context.Context, q Conn, appID uint64, id string, lock string) (store.Machine, error) {
	app, ok := DBID(appID)
	if !ok || !store.ValidMachineID(id) {
		return store.Machine{}, fmt.Errorf("machine %q: %w", id, store.ErrNotFound)
	}
	m, err := one(ctx, q, scanMachine, "SELECT "+machineColumns+" FROM machines WHERE id = ? AND app_id = ?"+lock, id, app)
	if err != nil {
		return store.Machine{}, fmt.Errorf("machine %s: %w", id, err)
	}
	return m, nil
}

// changeMachine runs fn on the machine, read and locked in a write
// transaction; fn makes the change and returns the machine as it then
// is, or the current one with its error.
func (s *Store) changeMachine(ctx context.Context, appID uint64, id string,
	fn func(tx Conn, cur store.Machine) (store.Machine, error)) (store.Machine, error) {
	return inTx(ctx, s, func(tx Conn) (store.Machine, error) {
		cur, err := getMachine(ctx, tx, appID, id, s.d.ForUpdate)
		if err != nil {
			return store.Machine{}, err
		}
		return fn(tx, cur)
	})
}

// atVersion fails with ErrStale unless the machine is at version.
func atVersion(cur store.Machine, version uint64) error {
	if cur.Version != version {
		return fmt.Errorf("machine %s is at version %d, not %d: %w", cur.ID, cur.Version, version, store.ErrStale)
	}
	return nil
}

// GetMachine implements [store.Machines].
func (s *Store) GetMachine(ctx context.Context, appID uint64, id string) (store.Machine, error) {
	m, err := getMachine(ctx, s.r, appID, id, "")
	if err != nil {
		return store.Machine{}, s.errf("get machine of app %d: %w", appID, err)
	}
	return m, nil
}

var machineListing = listing[store.CreatedKey, store.Machine]{"list machines", "app", store.CursorMachines,
	store.ParseCreatedCursor, scanMachine, store.MachineCursor}

// ListMachines implements [store.Machines].
func (s *Store) ListMachines(ctx context.Context, appID uint64, includeDestroyed bool, p store.Page) ([]store.Machine, string, error) {
	return machineListing.read(ctx, s, appID, p, func(q *page, app int64, after store.CreatedKey, from bool) (bool, error) {
		q.add("SELECT "+machineColumns+" FROM machines WHERE app_id = ?", app)
		if !includeDestroyed {
			q.add(" AND state <> 'destroyed'")
		}
		s.createdAfter(q, "id", after, after.ID, from)
		return !from || storable(after.ID), nil
	})
}

// UpdateMachine implements [store.Machines].
func (s *Store) UpdateMachine(ctx context.Context, m store.Machine, events ...store.MachineEvent) (store.Machine, error) {
	m, err := prepare(m, events)
	if err != nil {
		return store.Machine{}, s.errf("update machine: %w", err)
	}
	out, err := s.changeMachine(ctx, m.AppID, m.ID, func(tx Conn, cur store.Machine) (store.Machine, error) {
		if err := atVersion(cur, m.Version); err != nil {
			return store.Machine{}, err
		}
		_, err = tx.Exec(ctx, `UPDATE machines SET name = ?, state = ?, next_state = ?, next_at = ?, region = ?,
			image_ref = ?, instance_id = ?, private_ip = ?, config = ?, metadata = ?, updated_at = ?,
			version = version + 1 WHERE id = ?`,
			m.Name, string(m.State), string(m.Next), s.nullTS(m.NextAt), m.Region, m.ImageRef, m.InstanceID, m.PrivateIP,
			m.Config, store.EncodeMetadata(m.Metadata), s.ts(m.UpdatedAt), m.ID)
		if s.d.IsUnique(err) {
			return store.Machine{}, fmt.Errorf("machine name %q: %w", m.Name, store.ErrExists)
		}
		if err != nil {
			return store.Machine{}, fmt.Errorf("update machine %s: %w", m.ID, err)
		}
		out := m
		out.CreatedAt, out.Lease, out.Version = cur.CreatedAt, cur.Lease, cur.Version+1
		return out, s.appendEvents(ctx, tx, m.ID, events)
	})
	if err != nil {
		return store.Machine{}, s.errf("update machine of app %d: %w", m.AppID, err)
	}
	return out, nil
}

// ListMachineEvents implements [store.Machines].
func (s *Store) ListMachineEvents(ctx context.Context, appID uint64, id string, limit int) ([]store.MachineEvent, error) {
	if limit < 1 {
		return nil, s.errf("list machine events: limit %d: %w", limit, store.ErrInvalid)
	}
	app, ok := DBID(appID)
	if !ok || !store.ValidMachineID(id) {
		return nil, s.errf("list events of machine %q: %w", id, store.ErrNotFound)
	}
	// The machine's existence and its events are read in one statement,
	// so that an unknown machine is told apart from one without events.
	rows, err := s.r.Query(ctx, `SELECT e.type, e.status, e.source, e.at FROM machines m
		LEFT JOIN machine_events e ON e.machine_id = m.id
		WHERE m.id = ? AND m.app_id = ? ORDER BY e.seq DESC LIMIT ?`, id, app, limit)
	all, err := collect(rows, err, func(row Row) (store.MachineEvent, error) {
		var (
			e                   store.MachineEvent
			typ, status, source sql.NullString
		)
		err := row.Scan(&typ, &status, &source, At{&e.Timestamp})
		e.Type, e.Status, e.Source = typ.String, status.String, source.String
		return e, err
	})
	if err != nil {
		return nil, s.errf("list events of machine %s: %w", id, err)
	}
	if len(all) == 0 {
		return nil, s.errf("list events of machine %s: %w", id, store.ErrNotFound)
	}
	events := all[:0]
	for _, e := range all {
		if !e.Timestamp.IsZero() { // a zero time: the machine has no events
			events = append(events, e)
		}
	}
	return events, nil
}

// leaseChange runs change on the locked machine; change returns the new
// lease, or an error. The machine's version goes up.
func (s *Store) leaseChange(ctx context.Context, what string, appID uint64, id string,
	change func(cur store.Machine) (store.MachineLease, error)) (store.Machine, error) {
	out, err := s.changeMachine(ctx, appID, id, func(tx Conn, cur store.Machine) (store.Machine, error) {
		l, err := change(cur)
		if err != nil {
			return cur, err
		}
		if _, err := tx.Exec(ctx, `UPDATE machines SET lease_nonce = ?, lease_owner = ?, lease_version = ?,
			lease_expires_at = ?, version = version + 1 WHERE id = ?`,
			l.Nonce, l.Owner, l.Version, s.nullTS(l.ExpiresAt), id); err != nil {
			return store.Machine{}, fmt.Errorf("update lease: %w", err)
		}
		if !l.ExpiresAt.IsZero() {
			l.ExpiresAt = micro(l.ExpiresAt)
		}
		cur.Lease = l
		cur.Version++
		return cur, nil
	})
	if err != nil {
		return out, s.errf("%s of machine %s: %w", what, id, err)
	}
	return out, nil
}

// AcquireMachineLease implements [store.Machines].
func (s *Store) AcquireMachineLease(ctx context.Context, appID uint64, id string, l store.MachineLease, now time.Time) (store.Machine, error) {
	if err := l.Validate(); err != nil {
		return store.Machine{}, s.errf("acquire lease: %w", err)
	}
	if err := store.CheckTime("now", now); err != nil {
		return store.Machine{}, s.errf("acquire lease: %w", err)
	}
	return s.leaseChange(ctx, "acquire lease", appID, id, func(cur store.Machine) (store.MachineLease, error) {
		if cur.Lease.Active(now) {
			return l, store.ErrLeased
		}
		return l, nil
	})
}

// RefreshMachineLease implements [store.Machines].
func (s *Store) RefreshMachineLease(ctx context.Context, appID uint64, id, nonce string, expiresAt, now time.Time) (store.Machine, error) {
	for _, t := range []struct {
		name string
		t    time.Time
	}{{"expires at", expiresAt}, {"now", now}} {
		if err := store.CheckTime(t.name, t.t); err != nil {
			return store.Machine{}, s.errf("refresh lease: %w", err)
		}
	}
	return s.leaseChange(ctx, "refresh lease", appID, id, func(cur store.Machine) (store.MachineLease, error) {
		if err := store.CheckLeaseNonce(cur.Lease, nonce, now); err != nil {
			return cur.Lease, err
		}
		l := cur.Lease
		l.ExpiresAt = expiresAt
		return l, nil
	})
}

// ReleaseMachineLease implements [store.Machines].
func (s *Store) ReleaseMachineLease(ctx context.Context, appID uint64, id, nonce string, now time.Time) (store.Machine, error) {
	if err := store.CheckTime("now", now); err != nil {
		return store.Machine{}, s.errf("release lease: %w", err)
	}
	return s.leaseChange(ctx, "release lease", appID, id, func(cur store.Machine) (store.MachineLease, error) {
		if err := store.CheckLeaseNonce(cur.Lease, nonce, now); err != nil {
			return cur.Lease, err
		}
		return store.MachineLease{}, nil
	})
}

// metadataChange runs change on the locked machine's metadata, if the
// machine is at version.
func (s *Store) metadataChange(ctx context.Context, what string, appID uint64, id string, version uint64, when time.Time,
	change func(md map[string]string) error) (store.Machine, error) {
	if err := store.CheckTime("updated at", when); err != nil {
		return store.Machine{}, s.errf("%s: %w", what, err)
	}
	when = micro(when)
	out, err := s.changeMachine(ctx, appID, id, func(tx Conn, cur store.Machine) (store.Machine, error) {
		if err := atVersion(cur, version); err != nil {
			return store.Machine{}, err
		}
		if err := change(cur.Metadata); err != nil {
			return store.Machine{}, err
		}
		if _, err := tx.Exec(ctx, "UPDATE machines SET metadata = ?, updated_at = ?, version = version + 1 WHERE id = ?",
			store.EncodeMetadata(cur.Metadata), s.ts(when), id); err != nil {
			return store.Machine{}, fmt.Errorf("update metadata: %w", err)
		}
		cur.UpdatedAt = when
		cur.Version++
		return cur, nil
	})
	if err != nil {
		return store.Machine{}, s.errf("%s of machine %s: %w", what, id, err)
	}
	return out, nil
}

// SetMachineMetadata implements [store.Machines].
func (s *Store) SetMachineMetadata(ctx context.Context, appID uint64, id string, version uint64, key, value string, at time.Time) (store.Machine, error) {
	return s.metadataChange(ctx, "set metadata", appID, id, version, at, func(md map[string]string) error {
		return store.SetMetadataEntry(md, key, value)
	})
}

// DeleteMachineMetadata implements [store.Machines].
func (s *Store) DeleteMachineMetadata(ctx context.Context, appID uint64, id string, version uint64, key string, at time.Time) (store.Machine, error) {
	return s.metadataChange(ctx, "delete metadata", appID, id, version, at, func(md map[string]string) error {
		return store.DeleteMetadataEntry(md, key)
	})
}
