package caveat

import (
	"errors"
	"fmt"
)

// classError is a sentinel error that wraps its parent class, so that
// errors.Is(ErrUnauthorizedForAction, ErrUnauthorized) holds.
type classError struct {
	msg    string
	parent error
}

func (e *classError) Error() string { return e.msg }
func (e *classError) Unwrap() error { return e.parent }

func class(msg string, parent error) error { return &classError{msg, parent} }

// Authorization errors, returned when a verified caveat set is cleared against
// an access (spec §5.5). They form a hierarchy under ErrUnauthorized.
var (
	// ErrUnauthorized is wrapped by every authorization failure.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrInvalidAccess means the access lacks data a caveat needs, or is
	// malformed.
	ErrInvalidAccess = class("invalid access", ErrUnauthorized)
	// ErrResourceUnspecified means the access does not name the resource a
	// caveat restricts. IfPresent treats it as "not applicable".
	ErrResourceUnspecified = class("resource unspecified", ErrInvalidAccess)
	// ErrResourcesMutuallyExclusive means the access names two sibling
	// resources at once.
	ErrResourcesMutuallyExclusive = class("resources mutually exclusive", ErrInvalidAccess)
	// ErrUnauthorizedForResource means the resource is not allowed.
	ErrUnauthorizedForResource = class("unauthorized for resource", ErrUnauthorized)
	// ErrUnauthorizedForAction means the resource is allowed but not the action.
	ErrUnauthorizedForAction = class("unauthorized for action", ErrUnauthorized)
	// ErrUnauthorizedForRole means the caveat's roles do not permit the access.
	ErrUnauthorizedForRole = class("unauthorized for role", ErrUnauthorized)
	// ErrBadCaveat means a caveat is malformed, unregistered, or of a kind that
	// cannot be cleared (3P, BindToParentToken).
	ErrBadCaveat = class("bad caveat", ErrUnauthorized)
)

// Token errors, returned by decoding, parsing and verification.
var (
	// ErrMalformed is wrapped by every decoding and parsing error.
	ErrMalformed = errors.New("malformed token")
	// ErrLimit means an input exceeded one of the limits in limits.go.
	ErrLimit = class("token exceeds a limit", ErrMalformed)
	// ErrInvalid is wrapped by every verification failure.
	ErrInvalid = errors.New("invalid token")
	// ErrSignature means the HMAC chain does not match the key.
	ErrSignature = class("invalid signature", ErrInvalid)
	// ErrNonCanonical means a MAC'd field is not in the canonical encoding of
	// spec §2.2, so no conforming verifier would accept it.
	ErrNonCanonical = class("non-canonical encoding", ErrInvalid)
	// ErrMissingDischarge means a third-party caveat has no discharge in the
	// bundle.
	ErrMissingDischarge = class("no matching discharge token", ErrInvalid)
	// ErrBadDischarge means a discharge exists but does not verify.
	ErrBadDischarge = class("invalid discharge", ErrInvalid)
	// ErrWrongParent means a discharge is bound to a different parent token.
	ErrWrongParent = class("discharge bound to different parent token", ErrBadDischarge)
	// ErrProof means an operation is not allowed on a proof (a finalised
	// macaroon), or an attestation appears outside a proof.
	ErrProof = errors.New("proof restriction")
)

// DeniedError reports the caveat of a verified set that refused an access.
type DeniedError struct {
	// Index is the caveat's position in the cleared set.
	Index int
	// Caveat is the caveat's type name, e.g. "Machines".
	Caveat string
	// Err says what was denied and why; it wraps one of the Err* classes.
	Err error
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("caveat %d (%s): %v", e.Index, e.Caveat, e.Err)
}

func (e *DeniedError) Unwrap() error { return e.Err }
