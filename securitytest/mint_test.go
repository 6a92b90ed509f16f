package securitytest

// Nothing minted is broader than its minter: a token minted through an
// attenuated session allows, at every instant, only what the attenuated
// session allows; and a named token never does what its creator's role
// may not.

import (
	"context"
	"errors"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/authority"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/resset"
	"github.com/caveatdev/caveat/store"
)

// mintFriendlyCaveat is a caveat that often still lets a session create
// tokens, so that the property sees many mints: the organization or the
// apps with random masks that keep c more often than not, a validity
// window, commands, features; otherwise any caveat of the catalogue.
func mintFriendlyCaveat(r *mrand.Rand, w *world, org uint64) caveat.Caveat {
	withC := func() resset.Action {
		m := randomMask(r)
		if chance(r, 0.7) {
			m |= resset.ActionCreate
		}
		return m
	}
	switch r.IntN(8) {
	case 0, 1:
		return &flyio.Organization{ID: org, Mask: withC()}
	case 2, 5:
		set := uintSet(r, w.apps)
		for id := range set {
			set[id] |= resset.ActionCreate
		}
		return &flyio.Apps{Apps: set}
	case 3:
		start := w.now.Add(-time.Duration(r.IntN(3600)) * time.Second)
		return caveat.NewValidityWindow(start, time.Duration(1+r.IntN(48*3600))*time.Second)
	case 4:
		return &flyio.FeatureSet{Features: strSet(r, w.features)}
	default:
		return randomCaveat(r, w, 0, false)
	}
}

// attenuateSession adds n caveats to the session token of header.
func attenuateSession(t testing.TB, r *mrand.Rand, w *world, header, location string, org uint64, n int) string {
	t.Helper()
	b, err := caveat.ParseBundle(header)
	if err != nil {
		t.Fatal(err)
	}
	m := &b.Tokens[permissionToken(t, b, location)]
	for range n {
		if err := m.Add(mintFriendlyCaveat(r, w, org)); err != nil {
			t.Fatal(err)
		}
	}
	return b.Header()
}

func TestMintedNeverBroaderThanMinter(t *testing.T) {
	r := newRand(t)
	la := newLocalAuthority(t)
	ctx := context.Background()
	w := newWorld(la.clock.Now(), []uint64{la.org.ID, la.org.ID + 1}, []uint64{la.apps[0].ID, la.apps[1].ID}, []uint64{la.user.ID})
	profiles := authority.Profiles
	n := iterations(t, 150)
	minted, compared := 0, 0
	for i := range n {
		start := la.clock.Now()
		w.now = start
		session := la.session()
		attenuated := attenuateSession(t, r, w, session, la.location, la.org.ID, 1+r.IntN(4))
		p, err := la.svc.Authenticate(ctx, attenuated)
		if err != nil {
			continue // an expired window, for instance
		}
		req := authority.MintRequest{Profile: pick(r, profiles), OrgID: la.org.ID, Expiry: time.Duration(1+r.IntN(1000)) * time.Hour}
		if req.Profile == authority.ProfileDeploy || req.Profile == authority.ProfileMachineExec {
			req.AppID = pick(r, la.apps).ID
		}
		if req.Profile == authority.ProfileMachineExec && chance(r, 0.5) {
			req.Commands = flyio.Commands{{Args: slices.Clone(pick(r, w.commands)), Exact: chance(r, 0.5)}}
		}
		m, err := la.svc.Mint(ctx, p, req)
		if err != nil {
			if status, _, _ := httpjson.StatusOf(err); status != http.StatusForbidden && status != http.StatusBadRequest {
				t.Fatalf("case %d: mint: %v", i, err)
			}
			continue
		}
		minted++
		token := "FlyV1 " + m.Token.String()
		// The session's own validity: its discharge, its windows.
		sb, _ := caveat.ParseBundle(attenuated)
		end := sb.Expiry(permissionToken(t, sb, la.location))
		for range 40 {
			at := start.Add(time.Duration(r.Int64N(int64(48 * time.Hour))))
			if !end.Never() && !at.Before(end.At) {
				at = start.Add(time.Duration(r.Int64N(int64(end.At.Sub(start) + 1))))
			}
			la.clock.Set(at)
			org := la.org.ID
			if chance(r, 0.1) {
				org++
			}
			a := randomAccess(r, w, org)
			if a.AppID != nil && req.AppID != 0 && chance(r, 0.7) {
				a.AppID = flyio.Ptr(req.AppID) // within the token's scope, mostly
			}
			a.Time = at
			_, tokErr := la.svc.Authorize(ctx, token, a)
			if tokErr != nil {
				continue
			}
			compared++
			b := *a
			if _, err := la.svc.Authorize(ctx, attenuated, &b); err != nil {
				t.Fatalf("case %d: a %s token minted through the session allows %s at %s, which the session does not: %v\nsession: %s\ntoken: %s",
					i, req.Profile, describeAccess(a), at.UTC().Format(time.RFC3339), err,
					describeHeader(t, attenuated, la.location), describeHeader(t, token, la.location))
			}
		}
		la.clock.Set(start.Add(time.Second))
	}
	t.Logf("%d cases, %d tokens minted, %d allowed accesses compared", n, minted, compared)
	if minted < n/10 || compared == 0 {
		t.Fatalf("only %d of %d cases minted a token (%d comparisons): the property checked too little", minted, n, compared)
	}
}

// TestMintedTokenCarriesCreatorRole: for every profile and both roles, a
// named token allows no access its creator's role may not make (spec
// §6.5: features beyond a member's need an admin).
func TestMintedTokenCarriesCreatorRole(t *testing.T) {
	r := newRand(t)
	la := newLocalAuthority(t)
	ctx := context.Background()
	member, err := la.store.CreateUser(ctx, store.NewUser{Email: "bob@example.com", PasswordHash: "not a real hash", CreatedAt: la.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := la.store.AddMember(ctx, store.Membership{OrgID: la.org.ID, UserID: member.ID, Role: store.RoleMember, CreatedAt: la.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	creators := map[store.Role]*authority.Principal{
		store.RoleAdmin:  la.admin,
		store.RoleMember: {UserID: member.ID, SessionID: "local-member"},
	}
	w := newWorld(la.clock.Now(), []uint64{la.org.ID}, []uint64{la.apps[0].ID, la.apps[1].ID}, []uint64{la.user.ID, member.ID})
	n := iterations(t, 200)
	// The review's reproduction: a member's readonly token read these.
	adminOnly := []string{"deletion", "document_signing", "secrets", authority.FeatureKeys}
	refusedByRole := 0
	for _, profile := range authority.Profiles {
		for role, creator := range creators {
			if profile == authority.ProfileOrg && role != store.RoleAdmin {
				continue // refused: tested in authority
			}
			req := authority.MintRequest{Profile: profile, OrgID: la.org.ID}
			if profile == authority.ProfileDeploy || profile == authority.ProfileMachineExec {
				req.AppID = la.apps[0].ID
			}
			m, err := la.svc.Mint(ctx, creator, req)
			if err != nil {
				t.Fatalf("%s mints %s: %v", role, profile, err)
			}
			token := "FlyV1 " + m.Token.String()
			for k := range n + len(adminOnly) {
				var a *flyio.Access
				if k < len(adminOnly) {
					a = &flyio.Access{OrgID: flyio.Ptr(la.org.ID), Feature: flyio.Ptr(adminOnly[k]), Action: resset.ActionRead}
				} else {
					a = randomAccess(r, w, la.org.ID)
				}
				a.Time = la.clock.Now()
				_, err := la.svc.Authorize(ctx, token, a)
				if err == nil && role != store.RoleAdmin && a.RequiredRole() != flyio.RoleMember {
					t.Fatalf("a %s token created by a %s allows %s, which needs an admin", profile, role, describeAccess(a))
				}
				if err != nil && errors.Is(err, caveat.ErrUnauthorizedForRole) {
					refusedByRole++
				}
			}
		}
	}
	if refusedByRole == 0 {
		t.Fatal("no access was refused for the role: the property checked nothing")
	}
}
