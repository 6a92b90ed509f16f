package securitytest

// Teams against a model: random sequences of invitations, acceptances,
// role changes, removals, departures, cancellations and mints by random
// users, through the authority, each compared with what a model of the
// rules says. After every step the organization still has an admin, its
// members are the model's, and no one (no session, no named token) can do
// more than their creator's current role allows.

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat/authority"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/resset"
	"github.com/caveatdev/caveat/store"
)

// modelInvitation is an invitation the model knows of.
type modelInvitation struct {
	code    string
	email   string // as an email key
	role    store.Role
	expires time.Time
	open    bool // neither accepted nor cancelled
}

// modelToken is a named token the model knows of.
type modelToken struct {
	header  string
	creator uint64
	// byAdmin: minted by an admin, so without AllowedRoles.
	byAdmin bool
	revoked bool
}

// teamModel is what the rules say the organization is.
type teamModel struct {
	roles       map[uint64]store.Role // the members
	invitations []*modelInvitation
	tokens      []*modelToken
}

func (m *teamModel) admins() int {
	n := 0
	for _, r := range m.roles {
		if r == store.RoleAdmin {
			n++
		}
	}
	return n
}

func (m *teamModel) isAdmin(u uint64) bool { return m.roles[u] == store.RoleAdmin }

// openFor is the open invitation for an email key, if any.
func (m *teamModel) openFor(email string) *modelInvitation {
	for _, inv := range m.invitations {
		if inv.open && inv.email == email {
			return inv
		}
	}
	return nil
}

// leaves ends a membership in the model: the user's live tokens are
// revoked, or kept for keeper.
func (m *teamModel) leaves(u, keeper uint64) {
	delete(m.roles, u)
	for _, tk := range m.tokens {
		if tk.creator == u && !tk.revoked {
			if keeper != 0 {
				tk.creator = keeper
			} else {
				tk.revoked = true
			}
		}
	}
}

func TestTeamInvariants(t *testing.T) {
	r := newRand(t)
	n := iterations(t, 12)
	steps := 40
	ops := map[string]int{}
	for i := range n {
		teamSequence(t, r, i, steps, ops)
	}
	t.Logf("%d sequences of %d steps; successes by operation: %v", n, steps, ops)
	for _, op := range []string{"invite", "join", "set-role", "remove", "leave", "mint", "uninvite"} {
		if ops[op] == 0 {
			t.Errorf("no %s succeeded: the property checked too little", op)
		}
	}
}

func teamSequence(t *testing.T, r *mrand.Rand, seq, steps int, ops map[string]int) {
	la := newLocalAuthority(t)
	ctx := context.Background()
	org := la.org.ID
	users := []store.User{la.user}
	emails := map[uint64]string{la.user.ID: store.EmailKey(la.user.Email)}
	for _, name := range []string{"bob", "carol", "dan", "eve"} {
		u, err := la.store.CreateUser(ctx, store.NewUser{Email: name + "@example.com", PasswordHash: "not a real hash", CreatedAt: la.clock.Now()})
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
		emails[u.ID] = store.EmailKey(u.Email)
	}
	candidates := []string{"ada@example.com", "bob@example.com", "carol@example.com", "dan@example.com", "eve@example.com", "zed@example.com"}
	session := func(u store.User) *authority.Principal {
		return &authority.Principal{UserID: u.ID, SessionID: fmt.Sprintf("session-%d", u.ID)}
	}
	m := &teamModel{roles: map[uint64]store.Role{la.user.ID: store.RoleAdmin}}
	pick := func() store.User { return users[r.IntN(len(users))] }
	var trace []string

	for step := range steps {
		la.clock.Advance(time.Duration(r.IntN(40)) * time.Minute)
		now := la.clock.Now()
		// Mostly an admin (or a member), so that most steps are allowed
		// and the state grows; sometimes anyone.
		actor := pick()
		for range 4 {
			if m.roles[actor.ID] == store.RoleAdmin || chance(r, 0.25) {
				break
			}
			actor = pick()
		}
		var (
			op, what string
			want     bool
			err      error
		)
		switch k := r.IntN(100); {
		case k < 22:
			op = "invite"
			email := candidates[r.IntN(len(candidates))]
			if chance(r, 0.3) {
				email = strings.ToUpper(email[:1]) + email[1:]
			}
			role := []store.Role{store.RoleMember, store.RoleAdmin}[r.IntN(2)]
			expiry := time.Duration(30+r.IntN(150)) * time.Minute
			key := store.EmailKey(email)
			member := false
			for u, e := range emails {
				if e == key && m.roles[u] != "" {
					member = true
				}
			}
			open := m.openFor(key)
			want = m.isAdmin(actor.ID) && !member && (open == nil || !now.Before(open.expires))
			what = fmt.Sprintf("user %d invites %s as %s", actor.ID, email, role)
			var inv *authority.Invited
			inv, err = la.svc.Invite(ctx, session(actor), org, authority.InviteRequest{Email: email, Role: role, Expiry: expiry})
			if err == nil {
				if open != nil {
					open.open = false // expired, replaced
				}
				m.invitations = append(m.invitations, &modelInvitation{code: inv.Code, email: key, role: role, expires: now.Add(expiry), open: true})
			}
		case k < 44:
			op = "join"
			if len(m.invitations) == 0 {
				continue
			}
			inv := m.invitations[r.IntN(len(m.invitations))]
			joiner := pick()
			for u, e := range emails {
				if e == inv.email && chance(r, 0.7) {
					joiner = users[indexOf(users, u)]
				}
			}
			want = inv.open && now.Before(inv.expires) && emails[joiner.ID] == inv.email && m.roles[joiner.ID] == ""
			what = fmt.Sprintf("user %d accepts an invitation for %s as %s (open %v, expires %s)", joiner.ID, inv.email, inv.role, inv.open, inv.expires.Sub(now))
			_, _, err = la.svc.AcceptInvitation(ctx, session(joiner), inv.code)
			if err == nil {
				inv.open = false
				m.roles[joiner.ID] = inv.role
			}
		case k < 60:
			op = "set-role"
			target := pick()
			role := []store.Role{store.RoleMember, store.RoleAdmin}[r.IntN(2)]
			cur := m.roles[target.ID]
			want = m.isAdmin(actor.ID) && cur != "" && !(cur == store.RoleAdmin && role == store.RoleMember && m.admins() == 1)
			what = fmt.Sprintf("user %d makes user %d (%q) %s", actor.ID, target.ID, cur, role)
			_, err = la.svc.SetRole(ctx, session(actor), org, target.Email, role)
			if err == nil {
				m.roles[target.ID] = role
			}
		case k < 72:
			op = "remove"
			target := pick()
			keep := chance(r, 0.3)
			cur := m.roles[target.ID]
			want = m.isAdmin(actor.ID) && cur != "" && !(keep && target.ID == actor.ID) && !(cur == store.RoleAdmin && m.admins() == 1)
			what = fmt.Sprintf("user %d removes user %d (%q), keeping tokens: %v", actor.ID, target.ID, cur, keep)
			_, err = la.svc.RemoveMember(ctx, session(actor), org, fmt.Sprint(target.ID), keep)
			if err == nil {
				keeper := uint64(0)
				if keep {
					keeper = actor.ID
				}
				m.leaves(target.ID, keeper)
			}
		case k < 78:
			op = "leave"
			cur := m.roles[actor.ID]
			want = cur != "" && !(cur == store.RoleAdmin && m.admins() == 1)
			what = fmt.Sprintf("user %d (%q) leaves", actor.ID, cur)
			_, err = la.svc.Leave(ctx, session(actor), org)
			if err == nil {
				m.leaves(actor.ID, 0)
			}
		case k < 92:
			op = "mint"
			profile := []string{authority.ProfileReadonly, authority.ProfileOrg}[r.IntN(2)]
			cur := m.roles[actor.ID]
			want = cur != "" && (profile != authority.ProfileOrg || cur == store.RoleAdmin)
			what = fmt.Sprintf("user %d (%q) mints %s", actor.ID, cur, profile)
			var minted *authority.Minted
			minted, err = la.svc.Mint(ctx, session(actor), authority.MintRequest{Profile: profile, OrgID: org})
			if err == nil {
				m.tokens = append(m.tokens, &modelToken{header: "FlyV1 " + minted.Token.String(), creator: actor.ID, byAdmin: cur == store.RoleAdmin})
			}
		default:
			op = "uninvite"
			email := candidates[r.IntN(len(candidates))]
			open := m.openFor(store.EmailKey(email))
			want = m.isAdmin(actor.ID) && open != nil
			what = fmt.Sprintf("user %d cancels the invitation of %s", actor.ID, email)
			_, err = la.svc.CancelInvitation(ctx, session(actor), org, email)
			if err == nil {
				open.open = false
			}
		}
		trace = append(trace, fmt.Sprintf("%d. %s: %v", step, what, err))
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("sequence %d, step %s\n"+format+"\nsteps:\n  %s", append(append([]any{seq, trace[len(trace)-1]}, args...), strings.Join(trace, "\n  "))...)
		}
		if (err == nil) != want {
			fail("the model says success: %v", want)
		}
		if err == nil {
			ops[op]++
		}
		checkTeam(t, la, users, m, fail)
	}
}

func indexOf(users []store.User, id uint64) int {
	for i, u := range users {
		if u.ID == id {
			return i
		}
	}
	return -1
}

// checkTeam compares the organization with the model: its members, that
// it has an admin, and what every session and token may do.
func checkTeam(t *testing.T, la *localAuthority, users []store.User, m *teamModel, fail func(string, ...any)) {
	t.Helper()
	ctx := context.Background()
	org := la.org.ID
	members, err := la.store.ListMembers(ctx, org)
	if err != nil {
		t.Fatal(err)
	}
	admins := 0
	got := map[uint64]store.Role{}
	for _, mb := range members {
		got[mb.UserID] = mb.Role
		if mb.Role == store.RoleAdmin {
			admins++
		}
	}
	if admins == 0 {
		fail("the organization has no admin: %+v", members)
	}
	if fmt.Sprint(got) != fmt.Sprint(m.roles) {
		fail("members %v, the model's %v", got, m.roles)
	}
	keys := func() *flyio.Access {
		return &flyio.Access{OrgID: flyio.Ptr(org), Feature: flyio.Ptr(authority.FeatureKeys), Action: resset.ActionRead}
	}
	read := func() *flyio.Access { return &flyio.Access{OrgID: flyio.Ptr(org), Action: resset.ActionRead} }
	invite := func() *flyio.Access {
		return &flyio.Access{OrgID: flyio.Ptr(org), Feature: flyio.Ptr(authority.FeatureMembership), Action: resset.ActionCreate}
	}
	for _, u := range users {
		p := &authority.Principal{UserID: u.ID, SessionID: fmt.Sprintf("session-%d", u.ID)}
		role := m.roles[u.ID]
		for _, c := range []struct {
			name string
			a    *flyio.Access
			want bool
		}{
			{"read the organization", read(), role != ""},
			{"read its keys", keys(), role == store.RoleAdmin},
			{"invite", invite(), role == store.RoleAdmin},
		} {
			if err := la.svc.Allow(ctx, p, c.a); (err == nil) != c.want {
				fail("user %d (%q), session: %s: %v, want allowed: %v", u.ID, role, c.name, err, c.want)
			}
		}
	}
	for i, tk := range m.tokens {
		wantRead := !tk.revoked
		wantKeys := !tk.revoked && tk.byAdmin && m.isAdmin(tk.creator)
		if _, err := la.svc.Authorize(ctx, tk.header, read()); (err == nil) != wantRead {
			fail("token %d (creator %d, minted by an admin: %v, revoked: %v): read the organization: %v, want allowed: %v",
				i, tk.creator, tk.byAdmin, tk.revoked, err, wantRead)
		}
		if _, err := la.svc.Authorize(ctx, tk.header, keys()); (err == nil) != wantKeys {
			fail("token %d (creator %d, minted by an admin: %v, revoked: %v): read the keys: %v, want allowed: %v",
				i, tk.creator, tk.byAdmin, tk.revoked, err, wantKeys)
		}
	}
}
