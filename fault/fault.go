// Package fault is how caveat's services say what went wrong, without
// saying how a transport answers it.
//
// The authority, the identity service and the Machines API return an
// *Error whose Code classifies the failure (the caller's input is invalid,
// the principal is not authenticated or is denied, the thing is not
// found, …) and whose Message is what the caller is shown. Only the HTTP
// layer turns a Code into a status (internal/httpjson.Status); any error
// that holds no *Error is the server's own failure, answered as "internal
// error" and logged. Keeping HTTP at the edge lets the services call each
// other, and callers decide, by asking what happened rather than which
// status would be sent.
//
// A refusal by a token's caveats is an *Error of code Denied that also
// carries the caveats' refusals (Denials), so that a caller can ask
// whether an access was refused only because it named too little
// (OnlyUnspecified) instead of walking the error's tree.
//
// The package is public, and imports only the token library, so that
// services outside this module that use caveat's middleware can tell a
// denial from an unauthenticated request with errors.As.
package fault

import (
	"errors"
	"fmt"

	"github.com/caveatdev/caveat"
)

// Code classifies a failure.
type Code string

// The codes. Each says whose the failure is and what would change the
// answer; internal/httpjson maps each to one HTTP status.
const (
	// Invalid: the request is malformed or names impossible values.
	Invalid Code = "invalid"
	// Unauthenticated: no credential, or one that is malformed, invalid,
	// expired or revoked; a new one may succeed.
	Unauthenticated Code = "unauthenticated"
	// Denied: the principal is known but may not do this.
	Denied Code = "denied"
	// NotFound: the thing named does not exist, or is not the
	// principal's to see.
	NotFound Code = "not_found"
	// Conflict: the request contradicts the current state (a name
	// taken, a lease held, the last admin leaving, …).
	Conflict Code = "conflict"
	// Gone: the thing existed and ended for good (an expired invitation).
	Gone Code = "gone"
	// FailedPrecondition: the thing is not in the state the operation
	// needs (a machine that must be stopped first).
	FailedPrecondition Code = "failed_precondition"
	// Timeout: what the caller waited for did not happen in time.
	Timeout Code = "timeout"
	// TooLarge: the request is larger than the service accepts.
	TooLarge Code = "too_large"
	// RateLimited: too many attempts; retry later.
	RateLimited Code = "rate_limited"
	// Unavailable: the answer cannot be given now (a store the check
	// needs is down); retrying may succeed. Nothing was allowed.
	Unavailable Code = "unavailable"
)

// Error is a failure that the caller is told about.
type Error struct {
	Code Code
	// Message is what the caller is shown: it names what failed, and
	// never holds a secret.
	Message string
	// Err, when set, is the cause, for errors.Is and errors.As.
	Err error
	// Denials are the caveats' refusals of an access, for a Denied error
	// that the caveats decided; nil when something else refused (the
	// principal's organization or role).
	Denials []*caveat.DeniedError
}

// Error returns the message.
func (e *Error) Error() string { return e.Message }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// OnlyUnspecified reports whether e is a refusal by caveats each of which
// refused only because the access did not name a resource they restrict
// (caveat.ErrResourceUnspecified): a Machines caveat asked about an app as
// a whole, for instance. A refusal that is not the caveats' never is.
func (e *Error) OnlyUnspecified() bool {
	if e == nil || e.Code != Denied || len(e.Denials) == 0 {
		return false
	}
	for _, d := range e.Denials {
		if !errors.Is(d.Err, caveat.ErrResourceUnspecified) {
			return false
		}
	}
	return true
}

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code Code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error with the code whose message is err's, and whose
// cause is err.
func Wrap(code Code, err error) error {
	return &Error{Code: code, Message: err.Error(), Err: err}
}

// Deny returns the Denied *Error for a refusal by caveats (what
// caveat.CaveatSet.Clear returns): its message is err's, its cause err,
// and its Denials the *caveat.DeniedError values that err holds.
func Deny(err error) error {
	e := &Error{Code: Denied, Message: err.Error(), Err: err}
	collect(err, &e.Denials)
	return e
}

// collect appends the *caveat.DeniedError values in err's tree.
func collect(err error, out *[]*caveat.DeniedError) {
	switch e := err.(type) {
	case nil:
	case *caveat.DeniedError:
		*out = append(*out, e)
	case interface{ Unwrap() []error }:
		for _, c := range e.Unwrap() {
			collect(c, out)
		}
	case interface{ Unwrap() error }:
		collect(e.Unwrap(), out)
	}
}

// As returns the first *Error in err's chain.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// CodeOf returns the code of the first *Error in err's chain, or "" when
// there is none (nil, or a failure of the server's own).
func CodeOf(err error) Code {
	if e, ok := As(err); ok {
		return e.Code
	}
	return ""
}

// MessageOf returns the message of the first *Error in err's chain, or ""
// when there is none: the server's own failures are not described to the
// caller.
func MessageOf(err error) string {
	if e, ok := As(err); ok {
		return e.Message
	}
	return ""
}

// OnlyUnspecified reports whether err is a Denied *Error that the
// caveats decided only because the access named too little (see
// Error.OnlyUnspecified).
func OnlyUnspecified(err error) bool {
	e, ok := As(err)
	return ok && e.OnlyUnspecified()
}
