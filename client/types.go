package client

import "github.com/caveatdev/caveat/api"

// The client's names for the shapes of package api, which the server's
// handlers encode with the same declarations: a field that changes on one
// side changes on the other.
type (
	// User is an account.
	User = api.User
	// Organization is an organization, with the caller's role in it where
	// the server says.
	Organization = api.Organization
	// App is an app of an organization.
	App = api.App
	// Token is a registry record; Header is set only when it was just
	// created.
	Token = api.Token
	// Command is one allowed command of a machine-exec token.
	Command = api.Command
	// CreateTokenRequest asks for a named token.
	CreateTokenRequest = api.CreateTokenRequest
	// VerifiedToken is one permission token the authority verified, as
	// POST /v1/tokens/authenticate describes it.
	VerifiedToken = api.VerifiedToken
	// BranchRevocation is the answer to a branch revocation.
	BranchRevocation = api.BranchRevocation
	// Key is an organization's root key as the server lists it (never
	// its material).
	Key = api.Key

	// Member is a member of an organization.
	Member = api.Member
	// Invitation is a pending invitation to an organization; Code and URL
	// are set only in the answer to its creation.
	Invitation = api.Invitation
	// Removal is the outcome of removing a member, or of leaving.
	Removal = api.Removal
	// InviteRequest asks for an invitation.
	InviteRequest = api.InviteRequest

	// Session is what a login returns: the session token and the secret
	// with which the client obtains and renews its login discharge.
	Session = api.Session
	// SignupResult is a new account, and the organization created with it.
	SignupResult = api.SignupResult
	// WhoAmI is the account behind a session.
	WhoAmI = api.WhoAmI

	// Machine is a machine of an app.
	Machine = api.Machine
	// ImageRef is a machine's image reference, split.
	ImageRef = api.ImageRef
	// MachineEvent is an entry of a machine's event log.
	MachineEvent = api.MachineEvent
	// MachineStartResult is the answer of a start.
	MachineStartResult = api.MachineStartResult
	// MachineLease is a machine's lease; Nonce is set only for its holder.
	MachineLease = api.MachineLease
)
