// Package storetest is the conformance suite for [store.Store]: every
// backend runs it, so that the contracts written on the store interfaces
// hold the same way everywhere.
//
// # Use
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			db, err := mybackend.Open(…) // a fresh, empty store
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { db.Close() })
//			return db
//		})
//	}
//
// Subtests run in parallel, each on its own store.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/caveatdev/caveat/store"
	"github.com/google/uuid"
)

// Run runs every conformance test against stores made by newStore, which
// must return a new, empty store for each call and close it when t ends
// (with t.Cleanup).
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []namedTest[store.Store]{
		{"Ping", testPing},
		{"Time", testTime},
		{"Users", testUsers},
		{"UsersInvalid", testUsersInvalid},
		{"PasswordHash", testPasswordHash},
		{"ErrorsHoldNoSecrets", testErrorsHoldNoSecrets},
		{"RefusalsArePrintable", testRefusalsArePrintable},
		{"Signup", testSignup},
		{"SignupAtomic", testSignupAtomic},
		{"ConcurrentFirstSignup", testConcurrentFirstSignup},
		{"Organizations", testOrganizations},
		{"Memberships", testMemberships},
		{"LastAdmin", testLastAdmin},
		{"ConcurrentAdminRemoval", testConcurrentAdminRemoval},
		{"Sessions", testSessions},
		{"SessionRevocation", testSessionRevocation},
		{"SessionExpiry", testSessionExpiry},
		{"RootKeys", testRootKeys},
		{"RootKeyRotationAtomic", testRootKeyRotationAtomic},
		{"ConcurrentRotation", testConcurrentRotation},
		{"ConcurrentRetirement", testConcurrentRetirement},
		{"Apps", testApps},
		{"Tokens", testTokens},
		{"TokensInvalid", testTokensInvalid},
		{"TokenListOrder", testTokenListOrder},
		{"TokenRevocation", testTokenRevocation},
		{"TokenTouch", testTokenTouch},
		{"RevocationFeed", testRevocationFeed},
		{"ConcurrentTokenWriters", testConcurrentTokenWriters},
		{"FeedWhileRevoking", testFeedWhileRevoking},
		{"Paging", testPaging},
		{"BranchRevocation", testBranchRevocation},
		{"BranchRevocationInvalid", testBranchRevocationInvalid},
		{"BranchFeed", testBranchFeed},
		{"BranchBound", testBranchBound},
	}
	tests = append(tests, machineTests...)
	tests = append(tests, housekeepingTests...)
	tests = append(tests, teamTests...)
	runEach(t, newStore, tests)
}

// namedTest is one conformance test of a store of type S.
type namedTest[S any] struct {
	name string
	fn   func(t *testing.T, s S)
}

// runEach runs the tests as parallel subtests, each against a new store
// from newStore.
func runEach[S any](t *testing.T, newStore func(t *testing.T) S, tests []namedTest[S]) {
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

// t0 is the suite's clock origin: a zone other than UTC and nanoseconds
// that the store must drop, so that every round trip checks the time rules.
var t0 = time.Date(2031, 3, 4, 5, 6, 7, 123456789, time.FixedZone("UTC+1", 3600))

// at is t0 plus d.
func at(d time.Duration) time.Time { return t0.Add(d) }

// stored is t as the store must return it: UTC, microsecond precision.
func stored(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Microsecond)
}

func ctx(t *testing.T) context.Context { return t.Context() }

// wantErr fails unless err wraps target.
func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want one wrapping %q", err, target)
	}
}

// must fails on err.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantEqual compares values by their printed form, in which times print
// with their zone: equal means equal fields and every time in UTC.
func wantEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want)
	if g != w {
		t.Fatalf("%s:\n got %s\nwant %s", what, g, w)
	}
}

// MustUser creates a user with email, created at t0.
func MustUser(t *testing.T, s store.Store, email string) store.User {
	t.Helper()
	u, err := s.CreateUser(ctx(t), store.NewUser{Email: email, PasswordHash: "$argon2id$v=19$m=65536,t=3,p=2$c2FsdA$aGFzaA", CreatedAt: t0})
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	return u
}

// MustOrganization creates an organization with slug and, if admin is not
// 0, that admin, created at t0.
func MustOrganization(t *testing.T, s store.Store, slug string, admin uint64) store.Organization {
	t.Helper()
	o, err := s.CreateOrganization(ctx(t), store.NewOrganization{Slug: slug, Admin: admin, CreatedAt: t0})
	if err != nil {
		t.Fatalf("create organization: %v", err)
	}
	return o
}

// MustApp creates an app in org, created at t0.
func MustApp(t *testing.T, s store.Store, org uint64, name string) store.App {
	t.Helper()
	a, err := s.CreateApp(ctx(t), store.NewApp{OrgID: org, Name: name, CreatedAt: t0})
	if err != nil {
		t.Fatalf("create app: %v", err)
	}
	return a
}

// newToken is a valid token record for org, app and user, created at
// created, with a fresh id.
func newToken(org, app, user uint64, created time.Time) store.Token {
	return store.Token{
		ID:        uuid.NewString(),
		Name:      "deploy workers",
		Profile:   "deploy",
		OrgID:     org,
		AppID:     app,
		CreatedBy: user,
		CreatedAt: created,
		ExpiresAt: created.Add(8760 * time.Hour),
	}
}

// fixture is one user admin of one organization with one app.
type fixture struct {
	user store.User
	org  store.Organization
	app  store.App
}

func newFixture(t *testing.T, s store.Store) fixture {
	t.Helper()
	u := MustUser(t, s, "ops@example.com")
	o := MustOrganization(t, s, "acme", u.ID)
	a := MustApp(t, s, o.ID, "workers")
	return fixture{user: u, org: o, app: a}
}

// unknownIDs are ids that no store row has.
var unknownIDs = []uint64{0, 987654321, 1 << 63, ^uint64(0)}

func testPing(t *testing.T, s store.Store) {
	must(t, s.Ping(ctx(t)))
}

// testTime checks that times are stored at microsecond precision, returned
// in UTC, and that the store takes them from its caller.
func testTime(t *testing.T, s store.Store) {
	created := time.Date(2042, 12, 31, 23, 59, 59, 999999999, time.FixedZone("west", -7*3600))
	u, err := s.CreateUser(ctx(t), store.NewUser{Email: "t@example.com", PasswordHash: "h", CreatedAt: created})
	must(t, err)
	want := time.Date(2043, 1, 1, 6, 59, 59, 999999000, time.UTC)
	if !u.CreatedAt.Equal(want) || u.CreatedAt.Location() != time.UTC {
		t.Fatalf("CreateUser returned CreatedAt %v, want %v", u.CreatedAt, want)
	}
	got, err := s.GetUser(ctx(t), u.ID)
	must(t, err)
	if !got.CreatedAt.Equal(want) || got.CreatedAt.Location() != time.UTC {
		t.Fatalf("GetUser returned CreatedAt %v, want %v", got.CreatedAt, want)
	}

	// A far past and far future time survive, and times outside the
	// supported range are refused rather than silently changed.
	for _, tm := range []time.Time{time.Date(1970, 1, 1, 0, 0, 0, 1000, time.UTC), time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)} {
		u, err := s.CreateUser(ctx(t), store.NewUser{Email: fmt.Sprintf("%d@example.com", tm.Year()), PasswordHash: "h", CreatedAt: tm})
		must(t, err)
		got, err := s.GetUser(ctx(t), u.ID)
		must(t, err)
		if !got.CreatedAt.Equal(tm) {
			t.Errorf("time %v came back as %v", tm, got.CreatedAt)
		}
	}
	for _, tm := range []time.Time{{}, time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)} {
		_, err := s.CreateUser(ctx(t), store.NewUser{Email: "bad-time@example.com", PasswordHash: "h", CreatedAt: tm})
		wantErr(t, err, store.ErrInvalid)
	}
}

func testUsers(t *testing.T, s store.Store) {
	u, err := s.CreateUser(ctx(t), store.NewUser{Email: "Ada.Lovelace@Example.COM", PasswordHash: "hash-1", CreatedAt: t0})
	must(t, err)
	if u.ID == 0 {
		t.Fatal("CreateUser returned id 0")
	}
	want := store.User{ID: u.ID, Email: "Ada.Lovelace@Example.COM", PasswordHash: "hash-1", CreatedAt: stored(t0)}
	wantEqual(t, "created user", u, want)

	got, err := s.GetUser(ctx(t), u.ID)
	must(t, err)
	wantEqual(t, "GetUser", got, want)

	for _, email := range []string{"Ada.Lovelace@Example.COM", "ada.lovelace@example.com", "ADA.LOVELACE@EXAMPLE.COM"} {
		got, err := s.GetUserByEmail(ctx(t), email)
		must(t, err)
		wantEqual(t, "GetUserByEmail("+email+")", got, want)
	}

	// Case-insensitive uniqueness, Unicode included.
	_, err = s.CreateUser(ctx(t), store.NewUser{Email: "ada.lovelace@EXAMPLE.com", PasswordHash: "hash-2", CreatedAt: t0})
	wantErr(t, err, store.ErrExists)
	wantErr(t, err, store.ErrConflict)
	_, err = s.CreateUser(ctx(t), store.NewUser{Email: "Émile@example.com", PasswordHash: "h", CreatedAt: t0})
	must(t, err)
	_, err = s.CreateUser(ctx(t), store.NewUser{Email: "émile@example.com", PasswordHash: "h", CreatedAt: t0})
	wantErr(t, err, store.ErrExists)
	if _, err := s.GetUserByEmail(ctx(t), "ÉMILE@EXAMPLE.COM"); err != nil {
		t.Fatalf("GetUserByEmail with other case: %v", err)
	}

	v, err := s.CreateUser(ctx(t), store.NewUser{Email: "grace@example.com", PasswordHash: "hash-3", CreatedAt: at(time.Hour)})
	must(t, err)
	if v.ID == u.ID || v.ID == 0 {
		t.Fatalf("second user id %d, first %d", v.ID, u.ID)
	}

	for _, id := range unknownIDs {
		_, err := s.GetUser(ctx(t), id)
		wantErr(t, err, store.ErrNotFound)
	}
	_, err = s.GetUserByEmail(ctx(t), "nobody@example.com")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetUserByEmail(ctx(t), "")
	wantErr(t, err, store.ErrNotFound)
}

func testUsersInvalid(t *testing.T, s store.Store) {
	for _, tc := range []struct {
		name string
		u    store.NewUser
	}{
		{"empty email", store.NewUser{PasswordHash: "h", CreatedAt: t0}},
		{"empty hash", store.NewUser{Email: "a@example.com", CreatedAt: t0}},
		{"zero time", store.NewUser{Email: "a@example.com", PasswordHash: "h"}},
		{"long email", store.NewUser{Email: strings.Repeat("a", store.MaxEmailLen-11) + "@example.com", PasswordHash: "h", CreatedAt: t0}},
		{"long hash", store.NewUser{Email: "a@example.com", PasswordHash: strings.Repeat("h", store.MaxPasswordHashLen+1), CreatedAt: t0}},
		{"NUL", store.NewUser{Email: "a\x00@example.com", PasswordHash: "h", CreatedAt: t0}},
		{"not UTF-8", store.NewUser{Email: "a\xff@example.com", PasswordHash: "h", CreatedAt: t0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateUser(ctx(t), tc.u)
			wantErr(t, err, store.ErrInvalid)
		})
	}
	// Nothing was stored by the refused calls.
	_, err := s.GetUserByEmail(ctx(t), "a@example.com")
	wantErr(t, err, store.ErrNotFound)
	// The longest email is accepted.
	_, err = s.CreateUser(ctx(t), store.NewUser{Email: strings.Repeat("a", store.MaxEmailLen-12) + "@example.com", PasswordHash: "h", CreatedAt: t0})
	must(t, err)
}

func testPasswordHash(t *testing.T, s store.Store) {
	u := MustUser(t, s, "ops@example.com")
	must(t, s.SetPasswordHash(ctx(t), u.ID, "new-hash"))
	got, err := s.GetUser(ctx(t), u.ID)
	must(t, err)
	if got.PasswordHash != "new-hash" {
		t.Fatalf("hash after SetPasswordHash = %q", got.PasswordHash)
	}
	wantErr(t, s.SetPasswordHash(ctx(t), u.ID, ""), store.ErrInvalid)
	for _, id := range unknownIDs {
		wantErr(t, s.SetPasswordHash(ctx(t), id, "h"), store.ErrNotFound)
	}
}

// testErrorsHoldNoSecrets checks that refusals do not quote emails, hashes,
// session ids or sealed keys, which would reach logs.
func testErrorsHoldNoSecrets(t *testing.T, s store.Store) {
	const (
		email  = "secret.person@example.com"
		hash   = "$argon2id$v=19$secret-hash"
		sessID = "session-secret-0123456789"
	)
	sealed := store.SealedKey("sealed-secret-bytes")
	u, err := s.CreateUser(ctx(t), store.NewUser{Email: email, PasswordHash: hash, CreatedAt: t0})
	must(t, err)
	o := MustOrganization(t, s, "acme", u.ID)
	must(t, s.CreateSession(ctx(t), store.Session{ID: sessID, UserID: u.ID, CreatedAt: t0, ExpiresAt: at(time.Hour)}))
	_, err = s.RotateRootKey(ctx(t), store.NewRootKey{OrgID: o.ID, KID: []byte("k1"), Sealed: sealed, CreatedAt: t0})
	must(t, err)

	var errs []error
	_, err = s.CreateUser(ctx(t), store.NewUser{Email: email, PasswordHash: hash, CreatedAt: t0})
	errs = append(errs, err)
	_, err = s.GetUserByEmail(ctx(t), "other."+email)
	errs = append(errs, err)
	errs = append(errs, s.CreateSession(ctx(t), store.Session{ID: sessID, UserID: u.ID, CreatedAt: t0, ExpiresAt: at(time.Hour)}))
	_, err = s.GetSession(ctx(t), sessID+"x")
	errs = append(errs, err)
	_, err = s.RevokeSession(ctx(t), sessID+"x", t0)
	errs = append(errs, err)
	_, err = s.RotateRootKey(ctx(t), store.NewRootKey{OrgID: o.ID, KID: []byte("k1"), Sealed: sealed, CreatedAt: t0})
	errs = append(errs, err)
	for i, err := range errs {
		if err == nil {
			t.Fatalf("call %d succeeded, want an error", i)
		}
		msg := err.Error()
		for _, secret := range []string{email, "secret.person", hash, sessID, string(sealed), fmt.Sprintf("%x", []byte(sealed))} {
			if strings.Contains(msg, secret) {
				t.Errorf("error %q contains %q", msg, secret)
			}
		}
	}
}

// testRefusalsArePrintable creates records whose names and ids hold NUL
// and invalid UTF-8: each is refused as invalid, with a message that
// does not carry those bytes on (to logs, or to a JSON error) raw.
func testRefusalsArePrintable(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	const bad = "x\x00\xff"
	var errs []error
	_, err := s.CreateUser(ctx(t), store.NewUser{Email: bad + "@example.com", PasswordHash: "h", CreatedAt: t0})
	errs = append(errs, err)
	_, err = s.CreateOrganization(ctx(t), store.NewOrganization{Slug: bad, CreatedAt: t0})
	errs = append(errs, err)
	_, err = s.CreateApp(ctx(t), store.NewApp{OrgID: f.org.ID, Name: bad, CreatedAt: t0})
	errs = append(errs, err)
	tok := newToken(f.org.ID, f.app.ID, f.user.ID, t0)
	tok.ID = bad
	errs = append(errs, s.CreateToken(ctx(t), tok))
	_, err = s.CreateMachine(ctx(t), store.Machine{ID: bad, AppID: f.app.ID, Name: "m", State: store.MachineCreated,
		CreatedAt: t0, UpdatedAt: t0})
	errs = append(errs, err)
	_, err = s.CreateInvitation(ctx(t), newInvitation(f.org.ID, f.user.ID, bad+"@example.com", "h", t0))
	errs = append(errs, err)
	errs = append(errs, s.CreateSession(ctx(t), store.Session{ID: bad, UserID: f.user.ID, CreatedAt: t0, ExpiresAt: at(time.Hour)}))
	for i, err := range errs {
		wantErr(t, err, store.ErrInvalid)
		if msg := err.Error(); !utf8.ValidString(msg) || strings.ContainsRune(msg, 0) {
			t.Errorf("refusal %d carries the raw bytes: %q", i, msg)
		}
	}
}

func testSignup(t *testing.T, s store.Store) {
	first := store.Signup{
		User:             store.NewUser{Email: "first@example.com", PasswordHash: "h1", CreatedAt: t0},
		OrganizationSlug: "first-org",
		FirstUserOnly:    true,
	}
	u, o, err := s.CreateUserWithOrganization(ctx(t), first)
	must(t, err)
	wantEqual(t, "user", u, store.User{ID: u.ID, Email: "first@example.com", PasswordHash: "h1", CreatedAt: stored(t0)})
	wantEqual(t, "organization", o, store.Organization{ID: o.ID, Slug: "first-org", CreatedAt: stored(t0)})
	m, err := s.GetMembership(ctx(t), o.ID, u.ID)
	must(t, err)
	wantEqual(t, "membership", m, store.Membership{OrgID: o.ID, UserID: u.ID, Role: store.RoleAdmin, CreatedAt: stored(t0)})

	// A second "first" signup is refused and leaves nothing behind.
	second := store.Signup{
		User:             store.NewUser{Email: "second@example.com", PasswordHash: "h2", CreatedAt: at(time.Minute)},
		OrganizationSlug: "second-org",
		FirstUserOnly:    true,
	}
	_, _, err = s.CreateUserWithOrganization(ctx(t), second)
	wantErr(t, err, store.ErrNotFirst)
	wantErr(t, err, store.ErrConflict)
	if errors.Is(err, store.ErrExists) {
		t.Fatalf("ErrNotFirst also matches ErrExists: %v", err)
	}
	_, err = s.GetUserByEmail(ctx(t), "second@example.com")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetOrganizationBySlug(ctx(t), "second-org")
	wantErr(t, err, store.ErrNotFound)

	// Without FirstUserOnly it succeeds.
	second.FirstUserOnly = false
	u2, o2, err := s.CreateUserWithOrganization(ctx(t), second)
	must(t, err)
	if u2.ID == u.ID || o2.ID == o.ID {
		t.Fatalf("ids reused: users %d %d, organizations %d %d", u.ID, u2.ID, o.ID, o2.ID)
	}
	orgs, err := s.ListUserOrganizations(ctx(t), u2.ID)
	must(t, err)
	wantEqual(t, "organizations of the second user", orgs, []store.OrganizationRole{{Organization: o2, Role: store.RoleAdmin}})

	_, _, err = s.CreateUserWithOrganization(ctx(t), store.Signup{User: store.NewUser{Email: "x@example.com", PasswordHash: "h", CreatedAt: t0}})
	wantErr(t, err, store.ErrInvalid)
}

// testSignupAtomic checks that a signup whose organization cannot be
// created leaves no user, and the reverse.
func testSignupAtomic(t *testing.T, s store.Store) {
	taken := MustUser(t, s, "taken@example.com")
	MustOrganization(t, s, "taken-slug", taken.ID)

	_, _, err := s.CreateUserWithOrganization(ctx(t), store.Signup{
		User:             store.NewUser{Email: "new@example.com", PasswordHash: "h", CreatedAt: t0},
		OrganizationSlug: "taken-slug",
	})
	wantErr(t, err, store.ErrExists)
	_, err = s.GetUserByEmail(ctx(t), "new@example.com")
	wantErr(t, err, store.ErrNotFound)

	_, _, err = s.CreateUserWithOrganization(ctx(t), store.Signup{
		User:             store.NewUser{Email: "TAKEN@example.com", PasswordHash: "h", CreatedAt: t0},
		OrganizationSlug: "new-slug",
	})
	wantErr(t, err, store.ErrExists)
	_, err = s.GetOrganizationBySlug(ctx(t), "new-slug")
	wantErr(t, err, store.ErrNotFound)

	// After the failures, both names are still free.
	_, _, err = s.CreateUserWithOrganization(ctx(t), store.Signup{
		User:             store.NewUser{Email: "new@example.com", PasswordHash: "h", CreatedAt: t0},
		OrganizationSlug: "new-slug",
	})
	must(t, err)
}

// concurrency is how many goroutines the concurrent tests start.
const concurrency = 8

// parallel runs fn(i) for i in [0, concurrency) at once and returns the
// errors by i.
func parallel(fn func(i int) error) []error {
	errs := make([]error, concurrency)
	start := make(chan struct{})
	done := make(chan struct{})
	for i := range concurrency {
		go func() {
			defer func() { done <- struct{}{} }()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	for range concurrency {
		<-done
	}
	return errs
}

func testConcurrentFirstSignup(t *testing.T, s store.Store) {
	errs := parallel(func(i int) error {
		_, _, err := s.CreateUserWithOrganization(ctx(t), store.Signup{
			User:             store.NewUser{Email: fmt.Sprintf("user%d@example.com", i), PasswordHash: "h", CreatedAt: t0},
			OrganizationSlug: fmt.Sprintf("org-%d", i),
			FirstUserOnly:    true,
		})
		return err
	})
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case errors.Is(err, store.ErrNotFirst):
		default:
			t.Errorf("signup %d: %v", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("%d concurrent first signups succeeded, want exactly 1", won)
	}
	found := 0
	for i := range concurrency {
		if _, err := s.GetUserByEmail(ctx(t), fmt.Sprintf("user%d@example.com", i)); err == nil {
			found++
		} else {
			wantErr(t, err, store.ErrNotFound)
		}
	}
	if found != 1 {
		t.Fatalf("%d users stored, want 1", found)
	}
}
