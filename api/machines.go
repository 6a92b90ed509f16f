package api

import (
	"encoding/json"
	"time"
)

// Machine is a machine of an app as the Machines API shows it, in the
// shape of Fly.io's. To a principal that may not read the machine (action
// r), the answer of a create or an update shows only its ID (and the
// creator's lease Nonce); the fields left empty are then left out.
type Machine struct {
	ID         string    `json:"id"`
	Name       string    `json:"name,omitzero"`
	State      string    `json:"state,omitzero"`
	Region     string    `json:"region,omitzero"`
	ImageRef   ImageRef  `json:"image_ref,omitzero"`
	InstanceID string    `json:"instance_id,omitzero"`
	PrivateIP  string    `json:"private_ip,omitzero"`
	CreatedAt  time.Time `json:"created_at,omitzero"`
	UpdatedAt  time.Time `json:"updated_at,omitzero"`
	// Config is the machine's configuration, its metadata in
	// config.metadata. Left out of summaries.
	Config json.RawMessage `json:"config,omitempty"`
	// Events are the newest events first. Left out of summaries.
	Events []MachineEvent `json:"events,omitempty"`
	// Nonce is the lease's nonce, only in the answer to a create that
	// asked for a lease (lease_ttl).
	Nonce string `json:"nonce,omitempty"`
}

// ImageRef is an image reference split as Fly.io's API shows it.
type ImageRef struct {
	Registry   string `json:"registry"`
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
	Digest     string `json:"digest"`
}

// MachineEvent is an entry of a machine's event log; Timestamp is in Unix
// milliseconds, as Fly.io's.
type MachineEvent struct {
	Type      string `json:"type"`
	Status    string `json:"status"`
	Source    string `json:"source"`
	Timestamp int64  `json:"timestamp"`
}

// CreateMachineRequest is the body of a machine's create (POST
// /v1/apps/{app}/machines) and update (POST …/machines/{id}), in the shape
// of Fly.io's.
type CreateMachineRequest struct {
	// Config is a JSON object with at least "image"; "metadata", if
	// present, an object of strings. Other fields are kept as they are.
	Config json.RawMessage `json:"config"`
	// Region is where the machine runs (the server's default when empty);
	// an update cannot move a machine.
	Region string `json:"region,omitempty"`
	// Name is unique among the app's machines; the machine's id when
	// empty. An update with a name renames the machine.
	Name string `json:"name,omitempty"`
	// SkipLaunch leaves a new machine created, and an updated one stopped,
	// rather than starting it.
	SkipLaunch bool `json:"skip_launch,omitempty"`
	// LeaseTTL, in seconds, gives the new machine a lease held by the
	// creator, whose nonce the answer carries. Create only.
	LeaseTTL int `json:"lease_ttl,omitempty"`
}

// MachineStartResult is the answer of a start, in the shape of Fly.io's.
type MachineStartResult struct {
	Message string `json:"message"`
	Status  string `json:"status"`
	// PreviousState is the state the machine was started from, left out
	// for a principal that may not read the machine.
	PreviousState string `json:"previous_state,omitempty"`
}

// MachineLease is a machine's lease, in a LeaseResponse; ExpiresAt is in
// Unix seconds.
type MachineLease struct {
	// Nonce is set only in the answer to the client that took the lease.
	Nonce     string `json:"nonce,omitempty"`
	ExpiresAt int64  `json:"expires_at"`
	Owner     string `json:"owner"`
	// Version is the instance id of the machine when the lease was taken;
	// empty for a principal that may not read the machine.
	Version string `json:"version,omitempty"`
}

// LeaseResponse is the answer of the lease endpoints, in the shape of
// Fly's.
type LeaseResponse struct {
	Status string       `json:"status"`
	Data   MachineLease `json:"data"`
}
