package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/caveatdev/caveat/store"
)

func testOrganizations(t *testing.T, s store.Store) {
	u := MustUser(t, s, "ops@example.com")
	o, err := s.CreateOrganization(ctx(t), store.NewOrganization{Slug: "acme", Admin: u.ID, CreatedAt: t0})
	must(t, err)
	want := store.Organization{ID: o.ID, Slug: "acme", CreatedAt: stored(t0)}
	wantEqual(t, "created organization", o, want)
	got, err := s.GetOrganization(ctx(t), o.ID)
	must(t, err)
	wantEqual(t, "GetOrganization", got, want)
	got, err = s.GetOrganizationBySlug(ctx(t), "acme")
	must(t, err)
	wantEqual(t, "GetOrganizationBySlug", got, want)
	m, err := s.GetMembership(ctx(t), o.ID, u.ID)
	must(t, err)
	if m.Role != store.RoleAdmin {
		t.Fatalf("creator's role = %q, want admin", m.Role)
	}

	// Slugs compare byte for byte.
	_, err = s.CreateOrganization(ctx(t), store.NewOrganization{Slug: "acme", CreatedAt: t0})
	wantErr(t, err, store.ErrExists)
	upper, err := s.CreateOrganization(ctx(t), store.NewOrganization{Slug: "ACME", CreatedAt: at(time.Second)})
	must(t, err)
	if upper.ID == o.ID {
		t.Fatal("two organizations share an id")
	}
	members, err := s.ListMembers(ctx(t), upper.ID)
	must(t, err)
	if len(members) != 0 {
		t.Fatalf("organization created without admin has members %+v", members)
	}

	// An unknown admin fails the whole creation.
	for _, id := range unknownIDs[1:] {
		_, err = s.CreateOrganization(ctx(t), store.NewOrganization{Slug: "ghost", Admin: id, CreatedAt: t0})
		wantErr(t, err, store.ErrNotFound)
	}
	_, err = s.GetOrganizationBySlug(ctx(t), "ghost")
	wantErr(t, err, store.ErrNotFound)

	for _, id := range unknownIDs {
		_, err := s.GetOrganization(ctx(t), id)
		wantErr(t, err, store.ErrNotFound)
	}
	_, err = s.GetOrganizationBySlug(ctx(t), "Acme")
	wantErr(t, err, store.ErrNotFound)

	for _, o := range []store.NewOrganization{{CreatedAt: t0}, {Slug: "x"}, {Slug: "bad\x00slug", CreatedAt: t0}} {
		_, err := s.CreateOrganization(ctx(t), o)
		wantErr(t, err, store.ErrInvalid)
	}
}

func testMemberships(t *testing.T, s store.Store) {
	admin := MustUser(t, s, "admin@example.com")
	alice := MustUser(t, s, "alice@example.com")
	bob := MustUser(t, s, "bob@example.com")
	acme := MustOrganization(t, s, "acme", admin.ID)
	beta := MustOrganization(t, s, "beta", bob.ID)

	must(t, s.AddMember(ctx(t), store.Membership{OrgID: acme.ID, UserID: bob.ID, Role: store.RoleMember, CreatedAt: at(2 * time.Hour)}))
	must(t, s.AddMember(ctx(t), store.Membership{OrgID: acme.ID, UserID: alice.ID, Role: store.RoleMember, CreatedAt: at(time.Hour)}))

	err := s.AddMember(ctx(t), store.Membership{OrgID: acme.ID, UserID: alice.ID, Role: store.RoleAdmin, CreatedAt: t0})
	wantErr(t, err, store.ErrExists)
	for _, id := range unknownIDs {
		wantErr(t, s.AddMember(ctx(t), store.Membership{OrgID: acme.ID, UserID: id, Role: store.RoleMember, CreatedAt: t0}), store.ErrNotFound)
		wantErr(t, s.AddMember(ctx(t), store.Membership{OrgID: id, UserID: alice.ID, Role: store.RoleMember, CreatedAt: t0}), store.ErrNotFound)
	}
	for _, role := range []store.Role{"", "owner", "Admin"} {
		wantErr(t, s.AddMember(ctx(t), store.Membership{OrgID: beta.ID, UserID: alice.ID, Role: role, CreatedAt: t0}), store.ErrInvalid)
	}
	wantErr(t, s.AddMember(ctx(t), store.Membership{OrgID: beta.ID, UserID: alice.ID, Role: store.RoleMember}), store.ErrInvalid)

	// Ordered by user id, whatever the insertion order.
	members, err := s.ListMembers(ctx(t), acme.ID)
	must(t, err)
	wantEqual(t, "members of acme", members, []store.Membership{
		{OrgID: acme.ID, UserID: admin.ID, Role: store.RoleAdmin, CreatedAt: stored(t0)},
		{OrgID: acme.ID, UserID: alice.ID, Role: store.RoleMember, CreatedAt: stored(at(time.Hour))},
		{OrgID: acme.ID, UserID: bob.ID, Role: store.RoleMember, CreatedAt: stored(at(2 * time.Hour))},
	})

	orgs, err := s.ListUserOrganizations(ctx(t), bob.ID)
	must(t, err)
	wantEqual(t, "organizations of bob", orgs, []store.OrganizationRole{
		{Organization: acme, Role: store.RoleMember},
		{Organization: beta, Role: store.RoleAdmin},
	})

	must(t, s.SetMemberRole(ctx(t), acme.ID, alice.ID, store.RoleAdmin))
	must(t, s.SetMemberRole(ctx(t), acme.ID, alice.ID, store.RoleAdmin)) // no change
	m, err := s.GetMembership(ctx(t), acme.ID, alice.ID)
	must(t, err)
	wantEqual(t, "alice after promotion", m, store.Membership{OrgID: acme.ID, UserID: alice.ID, Role: store.RoleAdmin, CreatedAt: stored(at(time.Hour))})
	wantErr(t, s.SetMemberRole(ctx(t), acme.ID, alice.ID, "root"), store.ErrInvalid)
	wantErr(t, s.SetMemberRole(ctx(t), beta.ID, alice.ID, store.RoleMember), store.ErrNotFound)

	must(t, s.RemoveMember(ctx(t), acme.ID, bob.ID))
	_, err = s.GetMembership(ctx(t), acme.ID, bob.ID)
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.RemoveMember(ctx(t), acme.ID, bob.ID), store.ErrNotFound)
	orgs, err = s.ListUserOrganizations(ctx(t), bob.ID)
	must(t, err)
	wantEqual(t, "organizations of bob after removal", orgs, []store.OrganizationRole{{Organization: beta, Role: store.RoleAdmin}})

	for _, id := range unknownIDs {
		_, err := s.GetMembership(ctx(t), acme.ID, id)
		wantErr(t, err, store.ErrNotFound)
		_, err = s.GetMembership(ctx(t), id, alice.ID)
		wantErr(t, err, store.ErrNotFound)
		wantErr(t, s.RemoveMember(ctx(t), id, alice.ID), store.ErrNotFound)
		members, err := s.ListMembers(ctx(t), id)
		must(t, err)
		orgs, err := s.ListUserOrganizations(ctx(t), id)
		must(t, err)
		if len(members) != 0 || len(orgs) != 0 {
			t.Fatalf("unknown id %d lists %v and %v", id, members, orgs)
		}
	}
}

// testLastAdmin checks that an organization never loses its last admin.
func testLastAdmin(t *testing.T, s store.Store) {
	admin := MustUser(t, s, "admin@example.com")
	other := MustUser(t, s, "other@example.com")
	o := MustOrganization(t, s, "acme", admin.ID)

	wantErr(t, s.SetMemberRole(ctx(t), o.ID, admin.ID, store.RoleMember), store.ErrConflict)
	wantErr(t, s.RemoveMember(ctx(t), o.ID, admin.ID), store.ErrConflict)
	m, err := s.GetMembership(ctx(t), o.ID, admin.ID)
	must(t, err)
	if m.Role != store.RoleAdmin {
		t.Fatalf("refused demotion changed the role to %q", m.Role)
	}

	must(t, s.AddMember(ctx(t), store.Membership{OrgID: o.ID, UserID: other.ID, Role: store.RoleMember, CreatedAt: t0}))
	wantErr(t, s.RemoveMember(ctx(t), o.ID, admin.ID), store.ErrConflict) // a member is not an admin
	must(t, s.SetMemberRole(ctx(t), o.ID, other.ID, store.RoleAdmin))
	must(t, s.SetMemberRole(ctx(t), o.ID, admin.ID, store.RoleMember))
	must(t, s.RemoveMember(ctx(t), o.ID, admin.ID))
	wantErr(t, s.RemoveMember(ctx(t), o.ID, other.ID), store.ErrConflict)
}

// testConcurrentAdminRemoval has admins remove each other at once: at
// least one must stay.
func testConcurrentAdminRemoval(t *testing.T, s store.Store) {
	first := MustUser(t, s, "admin0@example.com")
	o := MustOrganization(t, s, "acme", first.ID)
	users := []store.User{first}
	for i := 1; i < concurrency; i++ {
		u := MustUser(t, s, fmt.Sprintf("admin%d@example.com", i))
		must(t, s.AddMember(ctx(t), store.Membership{OrgID: o.ID, UserID: u.ID, Role: store.RoleAdmin, CreatedAt: t0}))
		users = append(users, u)
	}
	errs := parallel(func(i int) error {
		if i%2 == 0 {
			return s.RemoveMember(ctx(t), o.ID, users[i].ID)
		}
		return s.SetMemberRole(ctx(t), o.ID, users[i].ID, store.RoleMember)
	})
	refused := 0
	for i, err := range errs {
		if errors.Is(err, store.ErrConflict) {
			refused++
		} else if err != nil {
			t.Errorf("change %d: %v", i, err)
		}
	}
	if refused != 1 {
		t.Errorf("%d changes refused, want exactly 1 (the last admin's)", refused)
	}
	members, err := s.ListMembers(ctx(t), o.ID)
	must(t, err)
	admins := 0
	for _, m := range members {
		if m.Role == store.RoleAdmin {
			admins++
		}
	}
	if admins != 1 {
		t.Fatalf("%d admins left, want 1: %+v", admins, members)
	}
}

func testSessions(t *testing.T, s store.Store) {
	u := MustUser(t, s, "ops@example.com")
	sess := store.Session{ID: "sess-1", UserID: u.ID, CreatedAt: t0, ExpiresAt: at(time.Hour)}
	must(t, s.CreateSession(ctx(t), sess))
	got, err := s.GetSession(ctx(t), "sess-1")
	must(t, err)
	wantEqual(t, "GetSession", got, store.Session{ID: "sess-1", UserID: u.ID, CreatedAt: stored(t0), ExpiresAt: stored(at(time.Hour))})
	if !got.Active(at(59*time.Minute)) || got.Active(at(time.Hour)) {
		t.Fatal("Active does not end at ExpiresAt")
	}

	wantErr(t, s.CreateSession(ctx(t), sess), store.ErrExists)
	for _, id := range unknownIDs {
		wantErr(t, s.CreateSession(ctx(t), store.Session{ID: "sess-2", UserID: id, CreatedAt: t0, ExpiresAt: at(time.Hour)}), store.ErrNotFound)
	}
	for _, bad := range []store.Session{
		{UserID: u.ID, CreatedAt: t0, ExpiresAt: at(time.Hour)},
		{ID: "s", UserID: u.ID, ExpiresAt: at(time.Hour)},
		{ID: "s", UserID: u.ID, CreatedAt: t0},
		{ID: "s", UserID: u.ID, CreatedAt: t0, ExpiresAt: t0},
		{ID: "s", UserID: u.ID, CreatedAt: t0, ExpiresAt: at(time.Hour), RevokedAt: t0},
	} {
		wantErr(t, s.CreateSession(ctx(t), bad), store.ErrInvalid)
	}
	_, err = s.GetSession(ctx(t), "sess-2")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetSession(ctx(t), "s")
	wantErr(t, err, store.ErrNotFound)
}

func testSessionRevocation(t *testing.T, s store.Store) {
	u := MustUser(t, s, "ops@example.com")
	v := MustUser(t, s, "dev@example.com")
	for i, owner := range []uint64{u.ID, u.ID, u.ID, v.ID} {
		must(t, s.CreateSession(ctx(t), store.Session{ID: fmt.Sprint("s", i), UserID: owner, CreatedAt: t0, ExpiresAt: at(time.Hour)}))
	}

	revoked, err := s.RevokeSession(ctx(t), "s0", at(time.Minute))
	must(t, err)
	if !revoked {
		t.Fatal("first RevokeSession reported false")
	}
	revoked, err = s.RevokeSession(ctx(t), "s0", at(2*time.Minute))
	must(t, err)
	if revoked {
		t.Fatal("second RevokeSession reported true")
	}
	got, err := s.GetSession(ctx(t), "s0")
	must(t, err)
	if !got.RevokedAt.Equal(stored(at(time.Minute))) {
		t.Fatalf("RevokedAt = %v, want the first revocation's %v", got.RevokedAt, stored(at(time.Minute)))
	}
	if got.Active(at(2 * time.Minute)) {
		t.Fatal("revoked session is active")
	}
	_, err = s.RevokeSession(ctx(t), "nope", t0)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.RevokeSession(ctx(t), "s1", time.Time{})
	wantErr(t, err, store.ErrInvalid)

	n, err := s.RevokeUserSessions(ctx(t), u.ID, at(3*time.Minute))
	must(t, err)
	if n != 2 {
		t.Fatalf("RevokeUserSessions revoked %d, want 2 (s0 was already revoked)", n)
	}
	got, err = s.GetSession(ctx(t), "s0")
	must(t, err)
	if !got.RevokedAt.Equal(stored(at(time.Minute))) {
		t.Fatalf("RevokeUserSessions moved an earlier revocation to %v", got.RevokedAt)
	}
	got, err = s.GetSession(ctx(t), "s3")
	must(t, err)
	if !got.Active(at(3 * time.Minute)) {
		t.Fatal("another user's session was revoked")
	}
	n, err = s.RevokeUserSessions(ctx(t), 987654321, t0)
	must(t, err)
	if n != 0 {
		t.Fatalf("revoked %d sessions of an unknown user", n)
	}
}

func testSessionExpiry(t *testing.T, s store.Store) {
	u := MustUser(t, s, "ops@example.com")
	for i, exp := range []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute} {
		must(t, s.CreateSession(ctx(t), store.Session{ID: fmt.Sprint("s", i), UserID: u.ID, CreatedAt: t0, ExpiresAt: at(exp)}))
	}
	_, err := s.RevokeSession(ctx(t), "s0", t0.Add(time.Second))
	must(t, err)
	n, err := s.DeleteExpiredSessions(ctx(t), at(2*time.Minute))
	must(t, err)
	if n != 2 {
		t.Fatalf("deleted %d sessions, want 2 (expiry at the cut-off included)", n)
	}
	for _, id := range []string{"s0", "s1"} {
		_, err := s.GetSession(ctx(t), id)
		wantErr(t, err, store.ErrNotFound)
	}
	_, err = s.GetSession(ctx(t), "s2")
	must(t, err)
	_, err = s.DeleteExpiredSessions(ctx(t), time.Time{})
	wantErr(t, err, store.ErrInvalid)
}
