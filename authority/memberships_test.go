package authority

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caveatdev/caveat/store"
)

// membershipCounter counts the membership reads of the store.
type membershipCounter struct {
	Store
	reads atomic.Int64
}

func (c *membershipCounter) GetMembership(ctx context.Context, orgID, userID uint64) (store.Membership, error) {
	c.reads.Add(1)
	return c.Store.GetMembership(ctx, orgID, userID)
}

// TestMembershipReadOncePerRequest: a request of the API reads the
// session's membership of the organization once, although resolving the
// organization's slug checks it and clearing the operation (and, for a
// list, each app) needs the role. Minting reads it once more after
// registering the token, on purpose: a removal that committed meanwhile
// revokes the new token.
func TestMembershipReadOncePerRequest(t *testing.T) {
	h := newHarness(t)
	u, o := h.user("ada@example.com", "acme")
	for _, name := range []string{"web", "workers", "cron"} {
		if _, err := h.db.CreateApp(context.Background(), store.NewApp{OrgID: o.ID, Name: name, CreatedAt: h.clk.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := h.login(u.ID, time.Hour)
	c := &membershipCounter{Store: h.svc.cfg.Store}
	h.svc.cfg.Store = c
	for _, tc := range []struct {
		name, method, path string
		body               any
		status             int
		reads              int64
	}{
		{"list apps", "GET", "/v1/apps?org_slug=acme", nil, 200, 1},
		{"list keys", "GET", "/v1/orgs/acme/keys", nil, 200, 1},
		{"list members", "GET", "/v1/orgs/acme/members", nil, 200, 1},
		{"mint", "POST", "/v1/tokens", map[string]string{"profile": "readonly", "org": "acme"}, 201, 2},
	} {
		before := c.reads.Load()
		if code, out := h.do(tc.method, tc.path, s, tc.body); code != tc.status {
			t.Fatalf("%s: %d %v", tc.name, code, out)
		}
		if got := c.reads.Load() - before; got != tc.reads {
			t.Errorf("%s: %d membership reads, want %d", tc.name, got, tc.reads)
		}
	}
}
