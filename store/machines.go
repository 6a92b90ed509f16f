package store

// Machines are the records of the Machines API: no VM runs behind them.
// Every change to a machine is a compare-and-set on its Version, so that
// two transitions decided on the same state cannot both win; the event
// that records a change is written in the same atomic step as the change.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// MachineState is where a machine is in its life.
type MachineState string

// The machine states. Starting, stopping, suspending, replacing and
// destroying are transitions: a machine in one of them has a
// [Machine.Next] state that it reaches at [Machine.NextAt].
const (
	MachineCreated    MachineState = "created"
	MachineStarting   MachineState = "starting"
	MachineStarted    MachineState = "started"
	MachineStopping   MachineState = "stopping"
	MachineStopped    MachineState = "stopped"
	MachineSuspending MachineState = "suspending"
	MachineSuspended  MachineState = "suspended"
	MachineReplacing  MachineState = "replacing"
	MachineDestroying MachineState = "destroying"
	MachineDestroyed  MachineState = "destroyed"
)

// MachineStates lists every state, in the order of a machine's life.
var MachineStates = []MachineState{
	MachineCreated, MachineStarting, MachineStarted, MachineStopping, MachineStopped,
	MachineSuspending, MachineSuspended, MachineReplacing, MachineDestroying, MachineDestroyed,
}

// Valid reports whether s is one of [MachineStates].
func (s MachineState) Valid() bool {
	for _, v := range MachineStates {
		if s == v {
			return true
		}
	}
	return false
}

// Limits on machine records.
const (
	// MachineIDLen is the length of a machine id: lowercase hex, like
	// Fly.io's.
	MachineIDLen = 14
	// MaxMachineConfigLen bounds a machine's config, in bytes of JSON.
	MaxMachineConfigLen = 64 << 10
	// MaxImageRefLen bounds an image reference.
	MaxImageRefLen = 1024
	// MaxMetadataKeys bounds the metadata entries of one machine.
	MaxMetadataKeys = 64
	// MaxMetadataValueLen bounds a metadata value, in bytes; keys are at
	// most MaxNameLen.
	MaxMetadataValueLen = 4096
	// MaxMachineEvents is how many of a machine's newest events the store
	// keeps at least; older ones may be deleted.
	MaxMachineEvents = 100
)

// ValidMachineID reports whether id has the form of a machine id:
// [MachineIDLen] characters of 0-9 and a-f.
func ValidMachineID(id string) bool {
	if len(id) != MachineIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Machine is a machine of an app.
type Machine struct {
	// ID is chosen by the caller (see [ValidMachineID]) and unique across
	// the store.
	ID    string
	AppID uint64
	// Name is unique among the app's machines that are not destroyed.
	Name  string
	State MachineState
	// Next is the state a machine in transition reaches at NextAt; both
	// are zero for a machine at rest. The store keeps them as given: the
	// caller decides when a transition is over and records it with
	// UpdateMachine.
	Next   MachineState
	NextAt time.Time
	Region string
	// ImageRef, InstanceID and PrivateIP may be empty.
	ImageRef   string
	InstanceID string
	PrivateIP  string
	// Config is the machine's configuration, a JSON object kept as text.
	Config string
	// Metadata is never nil in what the store returns.
	Metadata  map[string]string
	CreatedAt time.Time
	UpdatedAt time.Time
	// Lease is the machine's lease; zero when none was taken or the last
	// one was released. An expired lease may still be here (see
	// [MachineLease.Active]).
	Lease MachineLease
	// Version is assigned by the store: 1 at creation, one more at every
	// change (lease changes included). Updates name the version they
	// were decided on.
	Version uint64
}

// Validate reports, wrapping [ErrInvalid], a field of a machine to store
// that breaks its rules. Lease and Version are the store's and not
// checked.
func (m Machine) Validate() error {
	if !ValidMachineID(m.ID) {
		return fmt.Errorf("machine id %q: want %d characters of 0-9 and a-f: %w", m.ID, MachineIDLen, ErrInvalid)
	}
	if err := checkText("machine name", m.Name, MaxNameLen); err != nil {
		return err
	}
	if !m.State.Valid() {
		return fmt.Errorf("machine state %q: %w", m.State, ErrInvalid)
	}
	switch {
	case m.Next == "" && !m.NextAt.IsZero():
		return fmt.Errorf("machine has a transition time but no next state: %w", ErrInvalid)
	case m.Next != "" && !m.Next.Valid():
		return fmt.Errorf("machine next state %q: %w", m.Next, ErrInvalid)
	case m.Next != "":
		if err := checkTime("machine transition time", m.NextAt); err != nil {
			return err
		}
	}
	if err := checkText("machine region", m.Region, MaxNameLen); err != nil {
		return err
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"image ref", m.ImageRef, MaxImageRefLen}, {"instance id", m.InstanceID, MaxNameLen}, {"private ip", m.PrivateIP, MaxNameLen}} {
		if f.v == "" {
			continue
		}
		if err := checkText(f.name, f.v, f.max); err != nil {
			return err
		}
	}
	if err := checkConfig(m.Config); err != nil {
		return err
	}
	if err := checkMetadata(m.Metadata); err != nil {
		return err
	}
	if err := checkTime("created at", m.CreatedAt); err != nil {
		return err
	}
	return checkTime("updated at", m.UpdatedAt)
}

func checkConfig(c string) error {
	if err := checkText("machine config", c, MaxMachineConfigLen); err != nil {
		return err
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal([]byte(c), &obj) != nil || obj == nil {
		return fmt.Errorf("machine config is not a JSON object: %w", ErrInvalid)
	}
	return nil
}

func checkMetadata(md map[string]string) error {
	if len(md) > MaxMetadataKeys {
		return fmt.Errorf("%d metadata entries, the limit is %d: %w", len(md), MaxMetadataKeys, ErrInvalid)
	}
	for k, v := range md {
		if err := checkMetadataEntry(k, v); err != nil {
			return err
		}
	}
	return nil
}

func checkMetadataEntry(k, v string) error {
	if err := checkText("metadata key", k, MaxNameLen); err != nil {
		return err
	}
	if v == "" {
		return nil
	}
	return checkText("metadata value", v, MaxMetadataValueLen)
}

// CheckMetadataEntry reports, wrapping [ErrInvalid], a metadata key or
// value that the store would refuse.
func CheckMetadataEntry(key, value string) error { return checkMetadataEntry(key, value) }

// MachineLease lets one holder change a machine while others wait: the
// service refuses lease-guarded changes that do not present the nonce of
// an active lease.
type MachineLease struct {
	// Nonce is the lease's secret, chosen by the caller.
	Nonce     string
	Owner     string
	ExpiresAt time.Time
	// Version is the version of the machine the holder saw, as the caller
	// names it.
	Version string
}

// Active reports whether the lease holds the machine at now.
func (l MachineLease) Active(now time.Time) bool {
	return l.Nonce != "" && now.Before(l.ExpiresAt)
}

// LogValue keeps the nonce out of logs.
func (l MachineLease) LogValue() slog.Value {
	return slog.GroupValue(slog.String("owner", l.Owner), slog.Time("expires_at", l.ExpiresAt))
}

// Validate reports, wrapping [ErrInvalid], a field of a new lease that
// breaks its rules: a nonce, an owner and an expiry; the version may be
// empty.
func (l MachineLease) Validate() error {
	if err := checkText("lease nonce", l.Nonce, MaxNameLen); err != nil {
		return err
	}
	if err := checkText("lease owner", l.Owner, MaxNameLen); err != nil {
		return err
	}
	if l.Version != "" {
		if err := checkText("lease version", l.Version, MaxNameLen); err != nil {
			return err
		}
	}
	return checkTime("lease expiry", l.ExpiresAt)
}

// MachineEvent is one entry of a machine's event log.
type MachineEvent struct {
	// Type is what happened ("launch", "start", "stop", …), Status the
	// state it led to, Source who did it ("user", "flyd").
	Type, Status, Source string
	Timestamp            time.Time
}

// Validate reports, wrapping [ErrInvalid], a field that breaks its rules.
func (e MachineEvent) Validate() error {
	for _, f := range []struct{ name, v string }{{"event type", e.Type}, {"event status", e.Status}, {"event source", e.Source}} {
		if err := checkText(f.name, f.v, MaxNameLen); err != nil {
			return err
		}
	}
	return checkTime("event timestamp", e.Timestamp)
}

// ValidateMachineEvents validates each event.
func ValidateMachineEvents(events []MachineEvent) error {
	for _, e := range events {
		if err := e.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// The machine errors, refinements of the common ones.
var (
	// ErrStale: the machine changed since the version the caller named.
	// It is an [ErrConflict]: read the machine again and decide again.
	ErrStale error = &sentinel{msg: "stale machine version", parent: ErrConflict}

	// ErrLeased: another active lease holds the machine, or the nonce
	// given is not the active lease's. It is an [ErrConflict].
	ErrLeased error = &sentinel{msg: "leased by another holder", parent: ErrConflict}

	// ErrNoLease: the machine has no active lease. It is an
	// [ErrNotFound].
	ErrNoLease error = &sentinel{msg: "no active lease", parent: ErrNotFound}
)

// Machines holds the apps' machines and their event logs.
//
// Every method that changes a machine names it by app and id: a machine
// of another app is ErrNotFound. Every change adds one to the machine's
// Version and returns the machine as it is after the change.
type Machines interface {
	// CreateMachine adds a machine with Version 1 and, in the same atomic
	// step, its first events (in order). It fails with ErrExists when the
	// id is taken or when a machine of the app that is not destroyed has
	// the name, with ErrNotFound when the app does not exist, and with
	// ErrInvalid when m or an event does not validate. m.Lease and
	// m.Version are ignored.
	CreateMachine(ctx context.Context, m Machine, events ...MachineEvent) (Machine, error)

	// GetMachine returns the app's machine with this id, destroyed ones
	// included, or ErrNotFound.
	GetMachine(ctx context.Context, appID uint64, id string) (Machine, error)

	// ListMachines returns a page of the app's machines, oldest first
	// (ordered by creation time, then id), destroyed ones only when
	// includeDestroyed, and the cursor of the next page, "" after the last.
	// An unknown app gives an empty page. It fails with ErrInvalid for a
	// bad page or cursor.
	ListMachines(ctx context.Context, appID uint64, includeDestroyed bool, p Page) ([]Machine, string, error)

	// UpdateMachine replaces the machine's fields (all but ID, AppID,
	// CreatedAt, Lease and Version) with m's and appends events, in one
	// atomic step, if and only if the stored Version is m.Version: two
	// updates decided on the same version cannot both succeed. It fails
	// with ErrStale when the version differs, with ErrExists when the new
	// name is taken, with ErrNotFound when the machine does not exist,
	// and with ErrInvalid when m or an event does not validate.
	UpdateMachine(ctx context.Context, m Machine, events ...MachineEvent) (Machine, error)

	// ListMachineEvents returns up to limit of the machine's newest
	// events, newest first (the reverse of the order they were appended
	// in). limit must be at least 1 (ErrInvalid otherwise); an unknown
	// machine is ErrNotFound.
	ListMachineEvents(ctx context.Context, appID uint64, id string, limit int) ([]MachineEvent, error)

	// AcquireMachineLease gives the machine the lease l unless an active
	// lease (see [MachineLease.Active] at now) holds it; an expired lease
	// is replaced. When one does, it fails with ErrLeased and returns the
	// machine with the lease that holds it. It fails with ErrNotFound for
	// an unknown machine and ErrInvalid when l does not validate or now
	// is zero.
	AcquireMachineLease(ctx context.Context, appID uint64, id string, l MachineLease, now time.Time) (Machine, error)

	// RefreshMachineLease moves the expiry of the active lease with this
	// nonce to expiresAt. It fails with ErrNoLease when no lease is
	// active at now, with ErrLeased when the active lease has another
	// nonce, with ErrNotFound for an unknown machine, and with ErrInvalid
	// for a zero time.
	RefreshMachineLease(ctx context.Context, appID uint64, id, nonce string, expiresAt, now time.Time) (Machine, error)

	// ReleaseMachineLease ends the active lease with this nonce. It fails
	// as RefreshMachineLease does.
	ReleaseMachineLease(ctx context.Context, appID uint64, id, nonce string, now time.Time) (Machine, error)

	// SetMachineMetadata sets one metadata entry and UpdatedAt to at, if
	// and only if the stored Version is version. It fails with ErrStale,
	// ErrNotFound, or ErrInvalid for an entry or a time that does not
	// validate or when the machine would have more than MaxMetadataKeys
	// entries.
	SetMachineMetadata(ctx context.Context, appID uint64, id string, version uint64, key, value string, at time.Time) (Machine, error)

	// DeleteMachineMetadata deletes one metadata entry and sets UpdatedAt
	// to at, if and only if the stored Version is version. It fails with
	// ErrStale, with ErrNotFound for an unknown machine or key, and with
	// ErrInvalid for a zero time.
	DeleteMachineMetadata(ctx context.Context, appID uint64, id string, version uint64, key string, at time.Time) (Machine, error)
}

// EncodeMetadata is the JSON text backends store metadata as: an object,
// "{}" for none.
func EncodeMetadata(md map[string]string) string {
	if len(md) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(md) // a map of strings always encodes
	return string(b)
}

// DecodeMetadata reads what EncodeMetadata wrote; it never returns a nil
// map.
func DecodeMetadata(s string) (map[string]string, error) {
	md := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return md, nil
	}
	if err := json.Unmarshal([]byte(s), &md); err != nil {
		return nil, fmt.Errorf("stored metadata: %w", err)
	}
	if md == nil {
		md = map[string]string{}
	}
	return md, nil
}

// CheckLeaseNonce reports whether nonce names the lease that is active at
// now: nil, or ErrNoLease when none is active, or ErrLeased when the
// active one has another nonce. Backends use it so that they decide alike.
func CheckLeaseNonce(l MachineLease, nonce string, now time.Time) error {
	switch {
	case !l.Active(now):
		return ErrNoLease
	case l.Nonce != nonce:
		return ErrLeased
	}
	return nil
}

// SetMetadataEntry sets md[key] = value, or fails with ErrInvalid for an
// entry the store refuses or one too many entries.
func SetMetadataEntry(md map[string]string, key, value string) error {
	if err := checkMetadataEntry(key, value); err != nil {
		return err
	}
	if _, ok := md[key]; !ok && len(md) >= MaxMetadataKeys {
		return fmt.Errorf("a machine has at most %d metadata entries: %w", MaxMetadataKeys, ErrInvalid)
	}
	md[key] = value
	return nil
}

// DeleteMetadataEntry deletes md[key], or fails with ErrNotFound.
func DeleteMetadataEntry(md map[string]string, key string) error {
	if _, ok := md[key]; !ok {
		return fmt.Errorf("metadata key %q: %w", key, ErrNotFound)
	}
	delete(md, key)
	return nil
}
