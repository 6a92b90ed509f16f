// Package auth holds the caveats that a third-party authentication service
// checks before it issues a discharge, and the attestations it puts into the
// discharges it issues (spec §7).
//
// # Discharge-request caveats
//
// ConfineUser, ConfineOrganization, ConfineGoogleHD, ConfineGitHubOrg and
// MaxValidity are placed in the ticket of a third-party caveat. The third
// party builds a DischargeRequest from the identities the principal has
// proved and clears the ticket's caveats against it. Against any other
// access these caveats fail with caveat.ErrInvalidAccess.
//
// A Confine* caveat that the request does not satisfy fails with an
// *IdentityError, which deliberately does not wrap caveat.ErrUnauthorized
// (spec §5.5): it tells the third party which login to ask for, rather
// than that the request is forbidden.
//
// # Attestations
//
// FlyioUserID, GitHubUserID and GoogleUserID state who authenticated. They
// are allowed only in proofs (discharges) and are returned by verification
// only from trusted third parties (spec §4.9). Clearing skips them at the
// top level of a caveat set; anywhere else (inside IfPresent) they refuse
// every access with caveat.ErrBadCaveat, because a fact is not a
// restriction.
//
// Importing the package registers all of these types.
package auth

import (
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/caveatdev/caveat"
)

// DischargeRequest is the access that a third party clears a ticket's
// caveats against: the identities the principal authenticated with and the
// expiry of the discharge the third party means to issue. Its JSON form uses
// the Go field names, as the reference library's does.
type DischargeRequest struct {
	Flyio  []FlyioIdentity
	Google []GoogleIdentity
	GitHub []GitHubIdentity
	// Expiry is the end of the validity window of the discharge to be
	// issued; MaxValidity checks it. The zero value means the discharge
	// would not expire.
	Expiry time.Time
	// Time, when set, is returned by Now instead of the wall clock, so that
	// tests need no sleeping.
	Time time.Time `json:"-"`
}

// FlyioIdentity is an authenticated Fly.io account.
type FlyioIdentity struct {
	UserID          uint64
	OrganizationIDs []uint64
}

// GoogleIdentity is an authenticated Google account. HD is the hosted
// (Workspace) domain, empty for a consumer account; UserID is Google's
// numeric subject identifier, which does not fit in 64 bits.
type GoogleIdentity struct {
	HD     string
	UserID *big.Int
	Email  string
}

// GitHubIdentity is an authenticated GitHub account and the organizations
// it belongs to.
type GitHubIdentity struct {
	OrgIDs []uint64
	UserID uint64
	Login  string
}

var _ caveat.Access = (*DischargeRequest)(nil)

// Now implements caveat.Access: Time if set, else the wall clock.
func (r *DischargeRequest) Now() time.Time {
	if !r.Time.IsZero() {
		return r.Time
	}
	return time.Now()
}

// Validate implements caveat.Access. A request is well formed unless a
// Google user id is negative.
func (r *DischargeRequest) Validate() error {
	for i, g := range r.Google {
		if g.UserID != nil && g.UserID.Sign() < 0 {
			return fmt.Errorf("%w: Google identity %d: negative user id", caveat.ErrInvalidAccess, i)
		}
	}
	return nil
}

// IdentityError is returned when a discharge request lacks the identity that
// a Confine* caveat requires. It does not wrap caveat.ErrUnauthorized: the
// principal may still succeed by authenticating with the required account.
type IdentityError struct {
	// Caveat is the caveat that refused.
	Caveat caveat.Caveat
	// Want names the identity required, e.g. "Fly.io account 43".
	Want string
	// Got lists what the request offered of that kind, e.g. the user ids of
	// its Fly.io identities; it is empty when there was nothing to offer.
	Got []string
}

func (e *IdentityError) Error() string {
	if len(e.Got) == 0 {
		return "must authenticate with " + e.Want
	}
	return fmt.Sprintf("must authenticate with %s (got [%s])", e.Want, strings.Join(e.Got, " "))
}

// request returns the discharge request a Confine* caveat or MaxValidity
// needs, or an ErrInvalidAccess error naming the caveat.
func request(name string, a caveat.Access) (*DischargeRequest, error) {
	r, ok := a.(*DischargeRequest)
	if !ok {
		return nil, fmt.Errorf("%w: %s applies only to a discharge request, not %T",
			caveat.ErrInvalidAccess, name, a)
	}
	if r == nil {
		return nil, fmt.Errorf("%w: %s: nil discharge request", caveat.ErrInvalidAccess, name)
	}
	return r, nil
}

// errAttestation is what an attestation says when it is cleared as if it
// were a restriction (inside IfPresent).
func errAttestation(name string) error {
	return fmt.Errorf("%w: %s is an attestation and cannot restrict an access", caveat.ErrBadCaveat, name)
}
