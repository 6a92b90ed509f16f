package invitation

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/store"
)

func TestCode(t *testing.T) {
	c := NewCode()
	if !ValidCode(c) || !strings.HasPrefix(c, "cvi1_") || c == NewCode() {
		t.Fatalf("code %q", c)
	}
	for _, bad := range []string{"", "cvi1_", c[:len(c)-1], c + "A", strings.Replace(c, "cvi1_", "cvi2_", 1), "cvi1_" + strings.Repeat("!", 32)} {
		if ValidCode(bad) {
			t.Errorf("ValidCode(%q)", bad)
		}
	}
	if CodeHash(c) == CodeHash(NewCode()) || len(CodeHash(c)) != 64 || strings.Contains(CodeHash(c), c) {
		t.Fatalf("hash %q", CodeHash(c))
	}
}

// noInvitations is a store without the invitation asked for.
type noInvitations struct{ store.Invitations }

func (noInvitations) GetInvitation(context.Context, string) (store.Invitation, error) {
	return store.Invitation{}, store.ErrNotFound
}

func TestFindAndRefusal(t *testing.T) {
	ctx := context.Background()
	if _, err := Find(ctx, noInvitations{}, "nonsense"); fault.CodeOf(err) != fault.Invalid {
		t.Fatalf("not a code: %v", err)
	}
	if _, err := Find(ctx, noInvitations{}, NewCode()); fault.CodeOf(err) != fault.NotFound || !strings.Contains(err.Error(), "no such invitation") {
		t.Fatalf("unknown code: %v", err)
	}
	inv := store.Invitation{ExpiresAt: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	for _, tc := range []struct {
		err    error
		signup bool
		code   fault.Code
		msg    string
	}{
		{store.ErrInvitationUsed, false, fault.Conflict, "already used"},
		{store.ErrInvitationCancelled, false, fault.Conflict, "cancelled"},
		{store.ErrInvitationExpired, false, fault.Gone, "expired at 2030-01-02T03:04:05Z"},
		{store.ErrInvitationEmail, false, fault.Denied, "another email address"},
		{store.ErrExists, true, fault.Conflict, "an account with this email already exists"},
		{store.ErrExists, false, fault.Conflict, "already a member"},
		{store.ErrNotFound, false, fault.NotFound, "no such invitation"},
	} {
		err := Refusal(tc.err, inv, tc.signup)
		if fault.CodeOf(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Refusal(%v, signup %v) = %q (%s), want %s %q", tc.err, tc.signup, err, fault.CodeOf(err), tc.code, tc.msg)
		}
	}
	disk := errors.New("disk on fire")
	if err := Refusal(disk, inv, false); fault.CodeOf(err) != "" || !errors.Is(err, disk) {
		t.Fatalf("a store failure was told to the invitee: %v", err)
	}
}
