// Package invitation is what the authority, which issues invitations, and
// the identity service, which serves their page and signs invitees up,
// both need to know of an invitation code: its form, what the store keeps
// of it, how one is looked up, and what its invitee is told when it
// cannot be accepted. Keeping it here lets the two services be peers.
package invitation

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/store"
)

// Path is where the login service serves an invitation's page, under its
// location: LoginLocation + Path + code.
const Path = "/invitations/"

// codePrefix starts every invitation code, so that one is recognisable in
// a message or a leak scanner.
const codePrefix = "cvi1_"

// labelCode keeps invitation hashes apart from any other hash of the same
// text.
const labelCode = "caveat invitation code v1\x00"

// NewCode returns a fresh code: the prefix and 24 random bytes in
// unpadded base64url.
func NewCode() string {
	var b [24]byte
	rand.Read(b[:])
	return codePrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// ValidCode reports whether code has the form of an invitation code, so
// that anything else is refused without a database read.
func ValidCode(code string) bool {
	rest, ok := strings.CutPrefix(code, codePrefix)
	if !ok || len(rest) != 32 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(rest)
	return err == nil
}

// CodeHash is what the store keeps of an invitation code. The code holds
// 192 random bits, so a plain hash cannot be reversed.
func CodeHash(code string) string {
	h := sha256.Sum256([]byte(labelCode + code))
	return hex.EncodeToString(h[:])
}

// Refusal turns a store's refusal to accept an invitation into the answer
// its invitee reads; inv is the invitation when it was found. signup says
// whether the invitee was signing up (an existing email is then an
// existing account, not an existing membership).
func Refusal(err error, inv store.Invitation, signup bool) error {
	switch {
	case errors.Is(err, store.ErrInvitationUsed):
		return fault.Errorf(fault.Conflict, "this invitation was already used; ask an admin of the organization for a new one")
	case errors.Is(err, store.ErrInvitationCancelled):
		return fault.Errorf(fault.Conflict, "this invitation was cancelled by an admin of the organization")
	case errors.Is(err, store.ErrInvitationExpired):
		return fault.Errorf(fault.Gone, "this invitation expired at %s; ask an admin of the organization for a new one",
			inv.ExpiresAt.UTC().Format(time.RFC3339))
	case errors.Is(err, store.ErrInvitationEmail):
		return fault.Errorf(fault.Denied,
			"this invitation is for another email address: use the account (or sign up with the address) it was sent to")
	case errors.Is(err, store.ErrExists) && signup:
		return fault.Errorf(fault.Conflict, "an account with this email already exists: log in, then join with the code")
	case errors.Is(err, store.ErrExists):
		return fault.Errorf(fault.Conflict, "you are already a member of this organization")
	case errors.Is(err, store.ErrNotFound):
		return fault.Errorf(fault.NotFound, "no such invitation: check the code (the whole cvi1_… string), or ask for a new one")
	case errors.Is(err, store.ErrInvalid):
		return fault.Errorf(fault.Invalid, "%v", err)
	}
	return fmt.Errorf("accept invitation: %w", err)
}

// Find returns the invitation of a code: an Invalid *fault.Error for
// anything that is not a code, a NotFound one for a code of no invitation.
func Find(ctx context.Context, st store.Invitations, code string) (store.Invitation, error) {
	if !ValidCode(code) {
		return store.Invitation{}, fault.Errorf(fault.Invalid, "that is not an invitation code: it is the cvi1_… string at the end of the invitation's link")
	}
	inv, err := st.GetInvitation(ctx, CodeHash(code))
	if err != nil {
		return inv, Refusal(err, inv, false)
	}
	return inv, nil
}
