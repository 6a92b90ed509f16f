package caveat

import (
	"errors"
	"fmt"
)

// Branch revocation. Every attenuation step of a permission token has a
// tail: t0 = HMAC(key, nonce) for the token as minted, and t(k) after its
// first k caveats. The branch of step k is the binding id of t(k), the same
// value a discharge's BindToParentToken names (cut to 16 bytes), so a token
// "is" the branch of its final tail: BindingID(m). Revoking a branch refuses
// the token as it was at that step and every token attenuated from it (they
// all pass through that tail), and never an ancestor (whose chain stops
// before it). No wire format changes: verification computes every tail
// anyway, and the check is one set lookup per tail.

// BranchID names one attenuation step of a permission token: the first 16
// bytes of SHA-256 of the step's tail. BindingID(m) is the branch a token
// is; BranchID(BindingID(m)) converts it. (Not for a permission token that
// is a proof, whose encoded tail is finalised; caveat mints none.)
type BranchID [bindingIDSize]byte

// BranchSet is a set of revoked branches.
type BranchSet map[BranchID]struct{}

// VerifyOptions adjusts Bundle.VerifyWith (nil is Verify's behaviour).
type VerifyOptions struct {
	// RevokedBranches, when set, is asked once per permission token, before
	// its chain is walked, for the token's revoked branches (it may look the
	// token up by its nonce); a non-empty answer makes the verification
	// refuse the token when any of its tails has one of those binding ids.
	// An error aborts the verification and is returned wrapped: it is a
	// failure of the store behind the callback, not of the token.
	RevokedBranches func(m *Macaroon) (BranchSet, error)
}

// ErrBranchRevoked means one of a permission token's attenuation steps (a
// branch) has been revoked. The error names the step.
var ErrBranchRevoked = class("branch revoked", ErrInvalid)

// errAborted wraps a failure of a VerifyOptions callback: verification
// stops, and the caller sees a store failure, never ErrInvalid.
var errAborted = errors.New("verification aborted")

// branchRevokedErr names step k: the token with its first k caveats.
func branchRevokedErr(k int) error {
	if k == 0 {
		return fmt.Errorf("%w: step 0 (the token as minted, before any caveat)", ErrBranchRevoked)
	}
	return fmt.Errorf("%w: step %d (the token as of caveat %d)", ErrBranchRevoked, k, k-1)
}
