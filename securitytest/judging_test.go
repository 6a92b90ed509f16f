package securitytest

// The judging endpoints fail closed: a replica whose database fails
// answers authenticate and authorize (by id and by name) with a refusal
// or a failure to check (5xx), never an allow past the settle window and
// never an allow that needed a role it could not read; and a failure to
// read is not passed off as an answer about the token ("no organization").

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caveatdev/caveat/authority"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/resset"
	"github.com/caveatdev/caveat/store"
	"github.com/caveatdev/caveat/store/sqlite"
)

// Levels of failure of failingStore.
const (
	storeUp = iota
	membershipsDown
	storeDown
)

// failingStore is replica B's view of the shared database: the reads the
// authority makes to judge a token fail at the level set.
type failingStore struct {
	*sqlite.DB
	level atomic.Int32
}

func (f *failingStore) down(level int32) bool { return f.level.Load() >= level }

func (f *failingStore) GetMembership(ctx context.Context, orgID, userID uint64) (store.Membership, error) {
	if f.down(membershipsDown) {
		return store.Membership{}, errDatabaseDown
	}
	return f.DB.GetMembership(ctx, orgID, userID)
}

func (f *failingStore) ListUserOrganizations(ctx context.Context, userID uint64) ([]store.OrganizationRole, error) {
	if f.down(membershipsDown) {
		return nil, errDatabaseDown
	}
	return f.DB.ListUserOrganizations(ctx, userID)
}

func (f *failingStore) GetOrganizationBySlug(ctx context.Context, slug string) (store.Organization, error) {
	if f.down(storeDown) {
		return store.Organization{}, errDatabaseDown
	}
	return f.DB.GetOrganizationBySlug(ctx, slug)
}

func (f *failingStore) GetOrganization(ctx context.Context, id uint64) (store.Organization, error) {
	if f.down(storeDown) {
		return store.Organization{}, errDatabaseDown
	}
	return f.DB.GetOrganization(ctx, id)
}

func (f *failingStore) GetToken(ctx context.Context, id string) (store.Token, error) {
	if f.down(storeDown) {
		return store.Token{}, errDatabaseDown
	}
	return f.DB.GetToken(ctx, id)
}

func (f *failingStore) GetSession(ctx context.Context, id string) (store.Session, error) {
	if f.down(storeDown) {
		return store.Session{}, errDatabaseDown
	}
	return f.DB.GetSession(ctx, id)
}

func (f *failingStore) RevocationsSince(ctx context.Context, after uint64, limit int) ([]store.Revocation, error) {
	if f.down(storeDown) {
		return nil, errDatabaseDown
	}
	return f.DB.RevocationsSince(ctx, after, limit)
}

func (f *failingStore) RevocationCursor(ctx context.Context) (uint64, error) {
	if f.down(storeDown) {
		return 0, errDatabaseDown
	}
	return f.DB.RevocationCursor(ctx)
}

func TestJudgingFailsClosedWhenStoreDown(t *testing.T) {
	la := newLocalAuthority(t)
	ctx := context.Background()
	fs := &failingStore{DB: la.store}
	b, err := authority.New(authority.Config{Store: fs, Keyring: la.keyring, Location: la.location,
		LoginLocation: la.loginLocation, Now: la.clock.Now, RevocationPoll: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { b.Run(runCtx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	mux := http.NewServeMux()
	b.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	replica := &testServer{t: t, url: srv.URL}

	live := la.mint(authority.MintRequest{Profile: authority.ProfileOrg, Expiry: 24 * time.Hour})
	revokedMint, err := la.svc.Mint(ctx, la.admin, authority.MintRequest{Profile: authority.ProfileOrg, OrgID: la.org.ID, Expiry: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	revoked := "FlyV1 " + revokedMint.Token.String()
	session := la.session()
	tokens := map[string]string{"an org token": live, "a token revoked on the other replica": revoked, "a session": session}

	type question struct {
		what string
		ask  func(header string) (int, string)
	}
	org := la.org.ID
	questions := []question{
		{"authenticate", func(h string) (int, string) {
			return replica.post("/v1/tokens/authenticate", map[string]any{"header": h})
		}},
		{"authorize by id (member)", func(h string) (int, string) {
			return replica.post("/v1/tokens/authorize", map[string]any{"header": h, "access": map[string]any{"orgid": org, "action": "r"}})
		}},
		{"authorize by id (keys: admin)", func(h string) (int, string) {
			return replica.post("/v1/tokens/authorize", map[string]any{"header": h,
				"access": map[string]any{"orgid": org, "feature": authority.FeatureKeys, "action": "r"}})
		}},
		{"authorize by name", func(h string) (int, string) {
			return replica.post("/v1/tokens/authorize", map[string]any{"header": h,
				"access": map[string]any{"org_slug": "acme", "app_name": "web", "action": "r"}})
		}},
		{"authorize by name (keys: admin)", func(h string) (int, string) {
			return replica.post("/v1/tokens/authorize", map[string]any{"header": h,
				"access": map[string]any{"org_slug": "acme", "org_feature": authority.FeatureKeys, "action": "r"}})
		}},
	}

	// Everything is allowed while the store is up, and B caches it.
	for what, h := range tokens {
		for _, q := range questions {
			if code, body := q.ask(h); code != http.StatusOK {
				t.Fatalf("store up, %s, %s: %d %s", q.what, what, code, body)
			}
		}
	}

	// Memberships cannot be read; the verifications B cached are still
	// current. What needs a role is not allowed, and the failure is not
	// told as an unknown organization.
	fs.level.Store(membershipsDown)
	for what, h := range tokens {
		if h == revoked {
			continue
		}
		for _, q := range questions {
			code, body := q.ask(h)
			needsRole := strings.Contains(q.what, "admin") || h == session
			switch {
			case code == http.StatusOK && needsRole:
				t.Errorf("memberships unreadable, %s, %s: allowed (%s), but it needs a role", q.what, what, body)
			case code != http.StatusOK && code < 500:
				t.Errorf("memberships unreadable, %s, %s: %d %s, want an allow or a failure to check (5xx)", q.what, what, code, body)
			}
		}
	}

	// The same, asked in the process (no answer to compose, which reads
	// memberships too): what needs a role is not allowed.
	for what, h := range map[string]string{"an org token": live, "a session": session} {
		keys := &flyio.Access{OrgID: &org, Feature: flyio.Ptr(authority.FeatureKeys), Action: resset.ActionRead}
		if _, err := b.Authorize(ctx, h, keys); err == nil {
			t.Errorf("memberships unreadable, Authorize of the keys, %s: allowed, but it needs a role", what)
		}
	}

	// The token is revoked through the other replica, and B's database
	// goes down altogether: past the settle window, nothing is allowed,
	// and everything is a failure to check.
	if _, err := la.svc.Revoke(ctx, la.admin, revokedMint.Record.ID); err != nil {
		t.Fatal(err)
	}
	fs.level.Store(storeDown)
	la.clock.Advance(2 * authority.DefaultRevocationSettle)
	for what, h := range tokens {
		for _, q := range questions {
			if code, body := q.ask(h); code != http.StatusServiceUnavailable {
				t.Errorf("database down, past the settle window, %s, %s: %d %s, want 503", q.what, what, code, body)
			}
		}
	}

	// Up again: the revoked token is refused, the others allowed.
	fs.level.Store(storeUp)
	for what, h := range tokens {
		want := http.StatusOK
		if h == revoked {
			want = http.StatusUnauthorized
		}
		for _, q := range questions {
			if code, body := q.ask(h); code != want {
				t.Errorf("database up again, %s, %s: %d %s, want %d", q.what, what, code, body, want)
			}
		}
	}
}
