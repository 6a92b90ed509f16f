package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat/store"
)

// The conformance tests of teams: invitations, the member list and the
// removal of a member with their tokens.
var teamTests = []namedTest[store.Store]{
	{"Invitations", testInvitations},
	{"InvitationsInvalid", testInvitationsInvalid},
	{"InvitationAcceptance", testInvitationAcceptance},
	{"InvitationCancellation", testInvitationCancellation},
	{"SignupWithInvitation", testSignupWithInvitation},
	{"ConcurrentAcceptance", testConcurrentAcceptance},
	{"AcceptanceRacingCancellation", testAcceptanceRacingCancellation},
	{"MemberDetails", testMemberDetails},
	{"RemoveMemberWithTokens", testRemoveMemberWithTokens},
	{"RemoveMemberKeepingTokens", testRemoveMemberKeepingTokens},
	{"ConcurrentMemberRemoval", testConcurrentMemberRemoval},
}

// newInvitation is a valid invitation to org for email, by inviter,
// created at created and valid a week.
func newInvitation(org, inviter uint64, email, hash string, created time.Time) store.NewInvitation {
	return store.NewInvitation{OrgID: org, Email: email, Role: store.RoleMember, CodeHash: hash,
		InvitedBy: inviter, CreatedAt: created, ExpiresAt: created.Add(7 * 24 * time.Hour)}
}

// MustInvitation creates an invitation.
func MustInvitation(t *testing.T, s store.Store, n store.NewInvitation) store.Invitation {
	t.Helper()
	inv, err := s.CreateInvitation(ctx(t), n)
	if err != nil {
		t.Fatalf("create invitation: %v", err)
	}
	return inv
}

func testInvitations(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	other := MustOrganization(t, s, "other", f.user.ID)
	n := newInvitation(f.org.ID, f.user.ID, "Bob@Example.com", "hash-bob", t0)
	n.Role = store.RoleAdmin
	inv := MustInvitation(t, s, n)
	if inv.ID == 0 {
		t.Fatal("CreateInvitation returned id 0")
	}
	want := store.Invitation{ID: inv.ID, OrgID: f.org.ID, Email: "Bob@Example.com", Role: store.RoleAdmin, CodeHash: "hash-bob",
		InvitedBy: f.user.ID, CreatedAt: stored(t0), ExpiresAt: stored(n.ExpiresAt)}
	wantEqual(t, "created invitation", inv, want)
	got, err := s.GetInvitation(ctx(t), "hash-bob")
	must(t, err)
	wantEqual(t, "GetInvitation", got, want)
	if !got.Open() {
		t.Fatal("a new invitation is not open")
	}

	// One open invitation per organization and email, whatever its case;
	// another organization may invite the same email.
	_, err = s.CreateInvitation(ctx(t), newInvitation(f.org.ID, f.user.ID, "bob@example.COM", "hash-2", at(time.Hour)))
	wantErr(t, err, store.ErrExists)
	_, err = s.CreateInvitation(ctx(t), newInvitation(f.org.ID, f.user.ID, "carol@example.com", "hash-bob", at(time.Hour)))
	wantErr(t, err, store.ErrExists)
	inOther := MustInvitation(t, s, newInvitation(other.ID, f.user.ID, "bob@example.com", "hash-other", at(time.Hour)))
	carol := MustInvitation(t, s, newInvitation(f.org.ID, f.user.ID, "carol@example.com", "hash-carol", at(-time.Hour)))

	// Listed oldest first, per organization.
	list := all(t, pageSize, func(p store.Page) ([]store.Invitation, string, error) { return s.ListInvitations(ctx(t), f.org.ID, p) })
	wantEqual(t, "invitations of acme", list, []store.Invitation{carol, got})
	list = all(t, pageSize, func(p store.Page) ([]store.Invitation, string, error) { return s.ListInvitations(ctx(t), other.ID, p) })
	wantEqual(t, "invitations of other", list, []store.Invitation{inOther})
	for _, id := range unknownIDs {
		list := all(t, pageSize, func(p store.Page) ([]store.Invitation, string, error) { return s.ListInvitations(ctx(t), id, p) })
		if list == nil || len(list) != 0 {
			t.Fatalf("ListInvitations(%d) = %#v, want an empty list", id, list)
		}
	}

	// An expired invitation gives way to a new one for the same email,
	// and is cancelled at the new one's creation.
	later := n.ExpiresAt.Add(time.Minute)
	again := MustInvitation(t, s, newInvitation(f.org.ID, f.user.ID, "BOB@example.com", "hash-bob-2", later))
	old, err := s.GetInvitation(ctx(t), "hash-bob")
	must(t, err)
	if old.Open() || !old.CancelledAt.Equal(stored(later)) {
		t.Fatalf("the expired invitation after a new one: %+v, want cancelled at %v", old, stored(later))
	}
	list = all(t, pageSize, func(p store.Page) ([]store.Invitation, string, error) { return s.ListInvitations(ctx(t), f.org.ID, p) })
	wantEqual(t, "invitations of acme after the renewal", list, []store.Invitation{carol, again})

	for _, h := range []string{"unknown", "", "bad\xff", "nul\x00"} {
		_, err := s.GetInvitation(ctx(t), h)
		wantErr(t, err, store.ErrNotFound)
	}
	for _, id := range unknownIDs[1:] {
		_, err := s.CreateInvitation(ctx(t), newInvitation(id, f.user.ID, "x@example.com", "h-org", t0))
		wantErr(t, err, store.ErrNotFound)
		_, err = s.CreateInvitation(ctx(t), newInvitation(f.org.ID, id, "x@example.com", "h-user", t0))
		wantErr(t, err, store.ErrNotFound)
	}
}

func testInvitationsInvalid(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	valid := newInvitation(f.org.ID, f.user.ID, "bob@example.com", "h", t0)
	for _, tc := range []struct {
		name string
		edit func(n *store.NewInvitation)
	}{
		{"no email", func(n *store.NewInvitation) { n.Email = "" }},
		{"long email", func(n *store.NewInvitation) { n.Email = strings.Repeat("b", store.MaxEmailLen) + "@x" }},
		{"role", func(n *store.NewInvitation) { n.Role = "owner" }},
		{"no hash", func(n *store.NewInvitation) { n.CodeHash = "" }},
		{"NUL in hash", func(n *store.NewInvitation) { n.CodeHash = "a\x00b" }},
		{"no organization", func(n *store.NewInvitation) { n.OrgID = 0 }},
		{"no inviter", func(n *store.NewInvitation) { n.InvitedBy = 0 }},
		{"no creation time", func(n *store.NewInvitation) { n.CreatedAt = time.Time{} }},
		{"no expiry", func(n *store.NewInvitation) { n.ExpiresAt = time.Time{} }},
		{"expires at creation", func(n *store.NewInvitation) { n.ExpiresAt = n.CreatedAt }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := valid
			tc.edit(&n)
			_, err := s.CreateInvitation(ctx(t), n)
			wantErr(t, err, store.ErrInvalid)
		})
	}
	list := all(t, pageSize, func(p store.Page) ([]store.Invitation, string, error) { return s.ListInvitations(ctx(t), f.org.ID, p) })
	if len(list) != 0 {
		t.Fatalf("refused invitations were stored: %+v", list)
	}
}

func testInvitationAcceptance(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	bob := MustUser(t, s, "BOB@example.com")
	eve := MustUser(t, s, "eve@example.com")
	n := newInvitation(f.org.ID, f.user.ID, "bob@EXAMPLE.com", "hash-bob", t0)
	inv := MustInvitation(t, s, n)

	// Another user's email, an unknown user, an unknown code, a time at
	// or after the expiry: refused, and nothing changes.
	_, err := s.AcceptInvitation(ctx(t), "hash-bob", eve.ID, at(time.Hour))
	wantErr(t, err, store.ErrInvitationEmail)
	wantErr(t, err, store.ErrConflict)
	for _, id := range unknownIDs {
		_, err = s.AcceptInvitation(ctx(t), "hash-bob", id, at(time.Hour))
		wantErr(t, err, store.ErrNotFound)
	}
	_, err = s.AcceptInvitation(ctx(t), "hash-nobody", bob.ID, at(time.Hour))
	wantErr(t, err, store.ErrNotFound)
	_, err = s.AcceptInvitation(ctx(t), "hash-bob", bob.ID, n.ExpiresAt)
	wantErr(t, err, store.ErrInvitationExpired)
	_, err = s.AcceptInvitation(ctx(t), "hash-bob", bob.ID, time.Time{})
	wantErr(t, err, store.ErrInvalid)
	for _, u := range []uint64{bob.ID, eve.ID} {
		_, err = s.GetMembership(ctx(t), f.org.ID, u)
		wantErr(t, err, store.ErrNotFound)
	}
	got, err := s.GetInvitation(ctx(t), "hash-bob")
	must(t, err)
	wantEqual(t, "the invitation after refusals", got, inv)

	// The invited user, whatever the case of the email: a member in the
	// invitation's role, since the acceptance.
	accepted := n.ExpiresAt.Add(-time.Microsecond)
	got, err = s.AcceptInvitation(ctx(t), "hash-bob", bob.ID, accepted)
	must(t, err)
	want := inv
	want.AcceptedAt, want.AcceptedBy = stored(accepted), bob.ID
	wantEqual(t, "accepted invitation", got, want)
	got, err = s.GetInvitation(ctx(t), "hash-bob")
	must(t, err)
	wantEqual(t, "GetInvitation after acceptance", got, want)
	m, err := s.GetMembership(ctx(t), f.org.ID, bob.ID)
	must(t, err)
	wantEqual(t, "bob's membership", m, store.Membership{OrgID: f.org.ID, UserID: bob.ID, Role: store.RoleMember, CreatedAt: stored(accepted)})
	list := all(t, pageSize, func(p store.Page) ([]store.Invitation, string, error) { return s.ListInvitations(ctx(t), f.org.ID, p) })
	if len(list) != 0 {
		t.Fatalf("an accepted invitation is still listed: %+v", list)
	}

	// Used once only.
	_, err = s.AcceptInvitation(ctx(t), "hash-bob", bob.ID, accepted)
	wantErr(t, err, store.ErrInvitationUsed)

	// A member already: refused, and the invitation stays open.
	admin := newInvitation(f.org.ID, f.user.ID, "bob@example.com", "hash-bob-admin", at(time.Hour))
	admin.Role = store.RoleAdmin
	MustInvitation(t, s, admin)
	_, err = s.AcceptInvitation(ctx(t), "hash-bob-admin", bob.ID, at(2*time.Hour))
	wantErr(t, err, store.ErrExists)
	got, err = s.GetInvitation(ctx(t), "hash-bob-admin")
	must(t, err)
	if !got.Open() {
		t.Fatalf("a refused acceptance closed the invitation: %+v", got)
	}
	m, err = s.GetMembership(ctx(t), f.org.ID, bob.ID)
	must(t, err)
	if m.Role != store.RoleMember {
		t.Fatalf("a refused acceptance changed the role to %s", m.Role)
	}
}

func testInvitationCancellation(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	other := MustOrganization(t, s, "other", f.user.ID)
	bob := MustUser(t, s, "bob@example.com")
	inv := MustInvitation(t, s, newInvitation(f.org.ID, f.user.ID, "bob@example.com", "hash-bob", t0))

	_, err := s.CancelInvitation(ctx(t), other.ID, inv.ID, at(time.Minute))
	wantErr(t, err, store.ErrNotFound) // not that organization's
	for _, id := range unknownIDs {
		_, err := s.CancelInvitation(ctx(t), f.org.ID, id, at(time.Minute))
		wantErr(t, err, store.ErrNotFound)
	}
	_, err = s.CancelInvitation(ctx(t), f.org.ID, inv.ID, time.Time{})
	wantErr(t, err, store.ErrInvalid)

	got, err := s.CancelInvitation(ctx(t), f.org.ID, inv.ID, at(time.Minute))
	must(t, err)
	want := inv
	want.CancelledAt = stored(at(time.Minute))
	wantEqual(t, "cancelled invitation", got, want)
	_, err = s.CancelInvitation(ctx(t), f.org.ID, inv.ID, at(2*time.Minute))
	wantErr(t, err, store.ErrInvitationCancelled)
	_, err = s.AcceptInvitation(ctx(t), "hash-bob", bob.ID, at(2*time.Minute))
	wantErr(t, err, store.ErrInvitationCancelled)
	list := all(t, pageSize, func(p store.Page) ([]store.Invitation, string, error) { return s.ListInvitations(ctx(t), f.org.ID, p) })
	if len(list) != 0 {
		t.Fatalf("a cancelled invitation is still listed: %+v", list)
	}

	// Cancelled, the email may be invited again at once; an accepted
	// invitation cannot be cancelled.
	MustInvitation(t, s, newInvitation(f.org.ID, f.user.ID, "bob@example.com", "hash-bob-2", at(3*time.Minute)))
	accepted, err := s.AcceptInvitation(ctx(t), "hash-bob-2", bob.ID, at(4*time.Minute))
	must(t, err)
	_, err = s.CancelInvitation(ctx(t), f.org.ID, accepted.ID, at(5*time.Minute))
	wantErr(t, err, store.ErrInvitationUsed)
}

func testSignupWithInvitation(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	MustUser(t, s, "taken@example.com")
	n := newInvitation(f.org.ID, f.user.ID, "New.Person@example.com", "hash-new", t0)
	MustInvitation(t, s, n)
	MustInvitation(t, s, newInvitation(f.org.ID, f.user.ID, "taken@example.com", "hash-taken", t0))
	user := func(email string, created time.Time) store.NewUser {
		return store.NewUser{Email: email, PasswordHash: "h", CreatedAt: created}
	}

	// Refusals create no user.
	for _, tc := range []struct {
		hash  string
		u     store.NewUser
		want  error
		email string
	}{
		{"hash-new", user("someone.else@example.com", at(time.Hour)), store.ErrInvitationEmail, "someone.else@example.com"},
		{"hash-nothing", user("new.person@example.com", at(time.Hour)), store.ErrNotFound, "new.person@example.com"},
		{"hash-new", user("new.person@example.com", n.ExpiresAt), store.ErrInvitationExpired, "new.person@example.com"},
		{"hash-new", user("", at(time.Hour)), store.ErrInvalid, "new.person@example.com"},
		{"hash-new", store.NewUser{Email: "new.person@example.com", CreatedAt: at(time.Hour)}, store.ErrInvalid, "new.person@example.com"},
	} {
		_, _, err := s.SignupWithInvitation(ctx(t), tc.hash, tc.u)
		wantErr(t, err, tc.want)
		_, err = s.GetUserByEmail(ctx(t), tc.email)
		wantErr(t, err, store.ErrNotFound)
	}
	// A taken email: refused, and the invitation stays open.
	_, _, err := s.SignupWithInvitation(ctx(t), "hash-taken", user("TAKEN@example.com", at(time.Hour)))
	wantErr(t, err, store.ErrExists)
	inv, err := s.GetInvitation(ctx(t), "hash-taken")
	must(t, err)
	if !inv.Open() {
		t.Fatalf("a refused signup closed the invitation: %+v", inv)
	}

	u, inv, err := s.SignupWithInvitation(ctx(t), "hash-new", user("new.person@EXAMPLE.com", at(time.Hour)))
	must(t, err)
	wantEqual(t, "new user", u, store.User{ID: u.ID, Email: "new.person@EXAMPLE.com", PasswordHash: "h", CreatedAt: stored(at(time.Hour))})
	if inv.AcceptedBy != u.ID || !inv.AcceptedAt.Equal(stored(at(time.Hour))) {
		t.Fatalf("invitation after the signup: %+v", inv)
	}
	orgs, err := s.ListUserOrganizations(ctx(t), u.ID)
	must(t, err)
	wantEqual(t, "organizations of the new user", orgs, []store.OrganizationRole{{Organization: f.org, Role: store.RoleMember}})
	_, _, err = s.SignupWithInvitation(ctx(t), "hash-new", user("new.person@example.com", at(2*time.Hour)))
	wantErr(t, err, store.ErrInvitationUsed)
}

// testConcurrentAcceptance accepts one invitation many times at once:
// exactly one acceptance wins.
func testConcurrentAcceptance(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	bob := MustUser(t, s, "bob@example.com")
	MustInvitation(t, s, newInvitation(f.org.ID, f.user.ID, "bob@example.com", "hash-bob", t0))
	MustInvitation(t, s, newInvitation(f.org.ID, f.user.ID, "carol@example.com", "hash-carol", t0))
	errs := parallel(func(i int) error {
		_, err := s.AcceptInvitation(ctx(t), "hash-bob", bob.ID, at(time.Minute))
		return err
	})
	signups := parallel(func(i int) error {
		_, _, err := s.SignupWithInvitation(ctx(t), "hash-carol", store.NewUser{Email: "carol@example.com", PasswordHash: "h", CreatedAt: at(time.Minute)})
		return err
	})
	for what, errs := range map[string][]error{"acceptance": errs, "signup": signups} {
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
			case errors.Is(err, store.ErrConflict):
			default:
				t.Errorf("%s %d: %v", what, i, err)
			}
		}
		if won != 1 {
			t.Errorf("%d concurrent %ss succeeded, want exactly 1", won, what)
		}
	}
}

// testAcceptanceRacingCancellation accepts and cancels invitations at
// once: of each pair, exactly one wins, and the invitation and the
// membership tell the same story as the winner (an invitation both
// cancelled and accepted, or a cancellation reported while the member
// joined, would be a lost update).
func testAcceptanceRacingCancellation(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	const pairs = concurrency / 2
	for round := range 4 {
		users := make([]store.User, pairs)
		invs := make([]store.Invitation, pairs)
		for p := range pairs {
			email := fmt.Sprintf("r%d-p%d@example.com", round, p)
			users[p] = MustUser(t, s, email)
			invs[p] = MustInvitation(t, s, newInvitation(f.org.ID, f.user.ID, email, fmt.Sprintf("hash-%d-%d", round, p), t0))
		}
		errs := parallel(func(i int) error {
			p := i / 2
			if i%2 == 0 {
				_, err := s.AcceptInvitation(ctx(t), invs[p].CodeHash, users[p].ID, at(time.Minute))
				return err
			}
			_, err := s.CancelInvitation(ctx(t), f.org.ID, invs[p].ID, at(time.Minute))
			return err
		})
		for p := range pairs {
			accErr, canErr := errs[2*p], errs[2*p+1]
			inv, err := s.GetInvitation(ctx(t), invs[p].CodeHash)
			must(t, err)
			_, memberErr := s.GetMembership(ctx(t), f.org.ID, users[p].ID)
			switch {
			case accErr == nil && errors.Is(canErr, store.ErrInvitationUsed):
				must(t, memberErr)
				if inv.AcceptedAt.IsZero() || !inv.CancelledAt.IsZero() {
					t.Fatalf("round %d pair %d: acceptance won, but the invitation is %+v", round, p, inv)
				}
			case canErr == nil && errors.Is(accErr, store.ErrInvitationCancelled):
				wantErr(t, memberErr, store.ErrNotFound)
				if !inv.AcceptedAt.IsZero() || inv.CancelledAt.IsZero() {
					t.Fatalf("round %d pair %d: cancellation won, but the invitation is %+v", round, p, inv)
				}
			default:
				t.Fatalf("round %d pair %d: acceptance %v, cancellation %v: want exactly one to win (invitation %+v)",
					round, p, accErr, canErr, inv)
			}
		}
	}
}

func testMemberDetails(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	bob := MustUser(t, s, "Bob@example.com")
	must(t, s.AddMember(ctx(t), store.Membership{OrgID: f.org.ID, UserID: bob.ID, Role: store.RoleMember, CreatedAt: at(time.Hour)}))
	MustUser(t, s, "stranger@example.com")

	members := all(t, pageSize, func(p store.Page) ([]store.Member, string, error) { return s.ListMemberDetails(ctx(t), f.org.ID, p) })
	wantEqual(t, "members before any login", members, []store.Member{
		{Membership: store.Membership{OrgID: f.org.ID, UserID: f.user.ID, Role: store.RoleAdmin, CreatedAt: stored(t0)}, Email: "ops@example.com"},
		{Membership: store.Membership{OrgID: f.org.ID, UserID: bob.ID, Role: store.RoleMember, CreatedAt: stored(at(time.Hour))}, Email: "Bob@example.com"},
	})

	// A session is a login; the latest counts, whatever the order in
	// which sessions are recorded.
	for i, d := range []time.Duration{2 * time.Hour, 5 * time.Hour, 3 * time.Hour} {
		must(t, s.CreateSession(ctx(t), store.Session{ID: fmt.Sprintf("bob-%d", i), UserID: bob.ID, CreatedAt: at(d), ExpiresAt: at(d + time.Hour)}))
	}
	members = all(t, pageSize, func(p store.Page) ([]store.Member, string, error) { return s.ListMemberDetails(ctx(t), f.org.ID, p) })
	if !members[0].LastLoginAt.IsZero() || !members[1].LastLoginAt.Equal(stored(at(5*time.Hour))) {
		t.Fatalf("last logins: %v and %v, want none and %v", members[0].LastLoginAt, members[1].LastLoginAt, stored(at(5*time.Hour)))
	}
	for _, id := range unknownIDs {
		list := all(t, pageSize, func(p store.Page) ([]store.Member, string, error) { return s.ListMemberDetails(ctx(t), id, p) })
		if list == nil || len(list) != 0 {
			t.Fatalf("ListMemberDetails(%d) = %#v, want an empty list", id, list)
		}
	}
}

// teamFixture is an organization with an admin and a member, both with
// tokens.
type teamFixture struct {
	fixture
	member store.User
	other  store.Organization
}

func newTeamFixture(t *testing.T, s store.Store) teamFixture {
	t.Helper()
	f := teamFixture{fixture: newFixture(t, s)}
	f.member = MustUser(t, s, "bob@example.com")
	must(t, s.AddMember(ctx(t), store.Membership{OrgID: f.org.ID, UserID: f.member.ID, Role: store.RoleMember, CreatedAt: t0}))
	f.other = MustOrganization(t, s, "other", f.member.ID)
	return f
}

// mustToken creates a token and returns it as stored.
func mustToken(t *testing.T, s store.Store, tk store.Token) store.Token {
	t.Helper()
	must(t, s.CreateToken(ctx(t), tk))
	got, err := s.GetToken(ctx(t), tk.ID)
	must(t, err)
	return got
}

func testRemoveMemberWithTokens(t *testing.T, s store.Store) {
	f := newTeamFixture(t, s)
	// The member's live tokens of the organization (one of the app, one
	// without expiry), and tokens the removal leaves alone.
	live := []store.Token{mustToken(t, s, newToken(f.org.ID, f.app.ID, f.member.ID, at(2*time.Minute)))}
	noExpiry := newToken(f.org.ID, 0, f.member.ID, at(time.Minute))
	noExpiry.ExpiresAt = time.Time{}
	live = append([]store.Token{mustToken(t, s, noExpiry)}, live...)
	revoked := mustToken(t, s, newToken(f.org.ID, 0, f.member.ID, t0))
	_, err := s.RevokeToken(ctx(t), revoked.ID, at(3*time.Minute))
	must(t, err)
	revoked.RevokedAt = stored(at(3 * time.Minute))
	expired := newToken(f.org.ID, 0, f.member.ID, t0)
	expired.ExpiresAt = at(time.Hour)
	expired = mustToken(t, s, expired)
	elsewhere := mustToken(t, s, newToken(f.other.ID, 0, f.member.ID, t0))
	admins := mustToken(t, s, newToken(f.org.ID, 0, f.user.ID, t0))
	cursor, err := s.RevocationCursor(ctx(t))
	must(t, err)

	// Refusals change nothing.
	_, err = s.RemoveMemberWithTokens(ctx(t), store.Removal{OrgID: f.org.ID, UserID: f.user.ID, At: at(2 * time.Hour)})
	wantErr(t, err, store.ErrConflict) // the last admin
	_, err = s.RemoveMemberWithTokens(ctx(t), store.Removal{OrgID: f.org.ID, UserID: f.member.ID})
	wantErr(t, err, store.ErrInvalid)
	for _, id := range unknownIDs {
		_, err = s.RemoveMemberWithTokens(ctx(t), store.Removal{OrgID: f.org.ID, UserID: id, At: at(2 * time.Hour)})
		wantErr(t, err, store.ErrNotFound)
		_, err = s.RemoveMemberWithTokens(ctx(t), store.Removal{OrgID: id, UserID: f.member.ID, At: at(2 * time.Hour)})
		wantErr(t, err, store.ErrNotFound)
	}
	if c, err := s.RevocationCursor(ctx(t)); err != nil || c != cursor {
		t.Fatalf("refused removals moved the revocation feed: %d, %v", c, err)
	}

	// At two hours: the live tokens are revoked, oldest first, and fed.
	when := at(2 * time.Hour)
	got, err := s.RemoveMemberWithTokens(ctx(t), store.Removal{OrgID: f.org.ID, UserID: f.member.ID, At: when})
	must(t, err)
	want := make([]store.Token, len(live))
	for i, tk := range live {
		tk.RevokedAt = stored(when)
		want[i] = tk
	}
	wantEqual(t, "revoked tokens", got, want)
	_, err = s.GetMembership(ctx(t), f.org.ID, f.member.ID)
	wantErr(t, err, store.ErrNotFound)
	feed, err := s.RevocationsSince(ctx(t), cursor, 100)
	must(t, err)
	if len(feed) != len(live) {
		t.Fatalf("revocation feed after the removal: %+v, want %d entries", feed, len(live))
	}
	for i, r := range feed {
		if r.TokenID != live[i].ID || r.OrgID != f.org.ID || !r.RevokedAt.Equal(stored(when)) {
			t.Errorf("feed entry %d: %+v, want token %s at %v", i, r, live[i].ID, stored(when))
		}
	}
	for _, tk := range []store.Token{revoked, expired, elsewhere, admins} {
		after, err := s.GetToken(ctx(t), tk.ID)
		must(t, err)
		wantEqual(t, "a token the removal leaves alone", after, tk)
	}
	_, err = s.RemoveMemberWithTokens(ctx(t), store.Removal{OrgID: f.org.ID, UserID: f.member.ID, At: when})
	wantErr(t, err, store.ErrNotFound)
	if _, err := s.GetMembership(ctx(t), f.other.ID, f.member.ID); err != nil {
		t.Fatalf("removal from one organization touched another: %v", err)
	}

	// Without tokens, the result is an empty list.
	carol := MustUser(t, s, "carol@example.com")
	must(t, s.AddMember(ctx(t), store.Membership{OrgID: f.org.ID, UserID: carol.ID, Role: store.RoleAdmin, CreatedAt: t0}))
	got, err = s.RemoveMemberWithTokens(ctx(t), store.Removal{OrgID: f.org.ID, UserID: carol.ID, At: when})
	must(t, err)
	if got == nil || len(got) != 0 {
		t.Fatalf("removal of a member without tokens: %#v, want an empty list", got)
	}
}

func testRemoveMemberKeepingTokens(t *testing.T, s store.Store) {
	f := newTeamFixture(t, s)
	stranger := MustUser(t, s, "stranger@example.com")
	tk := mustToken(t, s, newToken(f.org.ID, f.app.ID, f.member.ID, t0))
	cursor, err := s.RevocationCursor(ctx(t))
	must(t, err)

	// The keeper must be another member.
	for _, keeper := range []uint64{stranger.ID, f.member.ID, 987654321} {
		_, err := s.RemoveMemberWithTokens(ctx(t), store.Removal{OrgID: f.org.ID, UserID: f.member.ID, At: at(time.Hour), KeepTokensFor: keeper})
		wantErr(t, err, store.ErrInvalid)
	}
	if _, err := s.GetMembership(ctx(t), f.org.ID, f.member.ID); err != nil {
		t.Fatalf("a refused removal removed the member: %v", err)
	}

	got, err := s.RemoveMemberWithTokens(ctx(t), store.Removal{OrgID: f.org.ID, UserID: f.member.ID, At: at(time.Hour), KeepTokensFor: f.user.ID})
	must(t, err)
	want := tk
	want.CreatedBy = f.user.ID
	wantEqual(t, "kept tokens", got, []store.Token{want})
	after, err := s.GetToken(ctx(t), tk.ID)
	must(t, err)
	wantEqual(t, "the kept token", after, want)
	if c, err := s.RevocationCursor(ctx(t)); err != nil || c != cursor {
		t.Fatalf("keeping tokens fed revocations: cursor %d, %v", c, err)
	}
	_, err = s.GetMembership(ctx(t), f.org.ID, f.member.ID)
	wantErr(t, err, store.ErrNotFound)
}

// testConcurrentMemberRemoval has admins remove each other, with their
// tokens, at once: exactly one stays, and only the removed lose tokens.
func testConcurrentMemberRemoval(t *testing.T, s store.Store) {
	first := MustUser(t, s, "admin0@example.com")
	o := MustOrganization(t, s, "acme", first.ID)
	users := []store.User{first}
	for i := 1; i < concurrency; i++ {
		u := MustUser(t, s, fmt.Sprintf("admin%d@example.com", i))
		must(t, s.AddMember(ctx(t), store.Membership{OrgID: o.ID, UserID: u.ID, Role: store.RoleAdmin, CreatedAt: t0}))
		users = append(users, u)
	}
	toks := make([]store.Token, len(users))
	for i, u := range users {
		toks[i] = mustToken(t, s, newToken(o.ID, 0, u.ID, t0))
	}
	results := make([][]store.Token, concurrency)
	errs := parallel(func(i int) error {
		var err error
		results[i], err = s.RemoveMemberWithTokens(ctx(t), store.Removal{OrgID: o.ID, UserID: users[i].ID, At: at(time.Hour)})
		return err
	})
	stayed := -1
	for i, err := range errs {
		switch {
		case errors.Is(err, store.ErrConflict):
			if stayed >= 0 {
				t.Fatalf("admins %d and %d both refused removal", stayed, i)
			}
			stayed = i
		case err != nil:
			t.Fatalf("removal %d: %v", i, err)
		case len(results[i]) != 1 || results[i][0].ID != toks[i].ID || !results[i][0].Revoked():
			t.Fatalf("removal %d revoked %+v, want its one token", i, results[i])
		}
	}
	if stayed < 0 {
		t.Fatal("every admin was removed")
	}
	revoked, err := s.IsTokenRevoked(ctx(t), toks[stayed].ID)
	must(t, err)
	if revoked {
		t.Fatal("the remaining admin's token was revoked")
	}
}
