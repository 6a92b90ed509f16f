package middleware_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/middleware"
	"github.com/caveatdev/caveat/resset"
)

// TestCheckAccess is the access rule's table: caveats first, then the
// token's organization, then the standing of the user (a named token's
// creator) where the access needs it. Each refusal is fault.Denied and
// names why; a failed membership read is never a refusal nor an allow.
func TestCheckAccess(t *testing.T) {
	org, other := uint64(7), uint64(8)
	keys := "keys"
	read := &flyio.Access{OrgID: &org, Action: resset.ActionRead}
	admin := &flyio.Access{OrgID: &org, Feature: &keys, Action: resset.ActionRead}
	elsewhere := &flyio.Access{OrgID: &other, Action: resset.ActionRead}
	whole := caveat.NewCaveatSet(&flyio.Organization{ID: org, Mask: resset.ActionAll})
	both := caveat.NewCaveatSet() // no caveat limits the organization
	readOnly := caveat.NewCaveatSet(&flyio.Organization{ID: org, Mask: resset.ActionRead})
	write := &flyio.Access{OrgID: &org, Action: resset.ActionWrite}
	errStore := errors.New("store down")

	for _, tc := range []struct {
		name     string
		caveats  caveat.CaveatSet
		session  bool
		standing middleware.Standing
		err      error
		a        *flyio.Access
		want     string // "" allowed; else a part of the denial
		asked    bool   // whether the standing must be read
	}{
		{"token, member access", whole, false, middleware.NotMember, nil, read, "", false},
		{"token, other organization", both, false, middleware.Admin, nil, elsewhere, "token of organization 7 cannot act on organization 8", false},
		{"token, admin access, creator admin", whole, false, middleware.Admin, nil, admin, "", true},
		{"token, admin access, creator member", whole, false, middleware.Member, nil, admin, "is now a member", true},
		{"token, admin access, creator gone", whole, false, middleware.NotMember, nil, admin, "is no longer a member", true},
		{"token, caveats refuse", readOnly, false, middleware.Admin, nil, write, "Organization", false},
		{"session, member access, member", both, true, middleware.Member, nil, read, "", true},
		{"session, admin access, member", both, true, middleware.Member, nil, admin, "user 3 is a member", true},
		{"session, admin access, admin", both, true, middleware.Admin, nil, admin, "", true},
		{"session, not a member", both, true, middleware.NotMember, nil, elsewhere, "user 3 is not a member of organization 8", true},
		{"session, caveats refuse first", readOnly, true, middleware.Admin, nil, write, "Organization", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			asked := false
			a := *tc.a
			err := middleware.CheckAccess(tc.caveats, tc.session, org, 3, func(uint64) (middleware.Standing, error) {
				asked = true
				return tc.standing, tc.err
			}, &a)
			if asked != tc.asked {
				t.Errorf("standing read: %v, want %v", asked, tc.asked)
			}
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if fault.CodeOf(err) != fault.Denied || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v (code %v), want a denial naming %q", err, fault.CodeOf(err), tc.want)
			}
		})
	}

	// A membership that cannot be read is a failure to check.
	for _, session := range []bool{false, true} {
		a := *admin
		err := middleware.CheckAccess(whole, session, org, 3, func(uint64) (middleware.Standing, error) {
			return middleware.Admin, errStore
		}, &a)
		if !errors.Is(err, errStore) || fault.CodeOf(err) == fault.Denied {
			t.Errorf("session %v, store down: %v, want the store's error, not a denial", session, err)
		}
	}
}
