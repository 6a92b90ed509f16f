package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat/client"
	"github.com/caveatdev/caveat/store"
	"github.com/google/uuid"
)

// TestTokensListPagesCLI is issue 13's regression: with 25 000 tokens in
// one app (a 6 MB answer in one piece, more than the client read, which
// then failed with "unexpected end of JSON input" and "is the server
// running?"), 'caveat tokens list' pages through them all, oldest first,
// as one JSON array; expired tokens show only with --expired; --limit
// stops early; and the API refuses pages it does not hand out.
func TestTokensListPagesCLI(t *testing.T) {
	e := startLoggedIn(t)
	e.ok("", "apps", "create", "workers")
	ctx := context.Background()
	st := e.srv.Store()
	u, err := st.GetUserByEmail(ctx, "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	o, err := st.GetOrganizationBySlug(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	app, err := st.GetAppByName(ctx, o.ID, "workers")
	if err != nil {
		t.Fatal(err)
	}
	const n = 25_000
	now := time.Now()
	start := now.Add(-time.Duration(n)*time.Second - time.Hour)
	var live []string
	batch := make([]store.Token, 0, 5000)
	for i := range n {
		tok := store.Token{ID: uuid.NewString(), Name: fmt.Sprintf("deploy-%05d", i), Profile: "deploy", OrgID: o.ID,
			AppID: app.ID, CreatedBy: u.ID, CreatedAt: start.Add(time.Duration(i) * time.Second), ExpiresAt: now.Add(365 * 24 * time.Hour)}
		if i%10 == 3 {
			tok.ExpiresAt = now.Add(-time.Minute) // expired
		} else {
			live = append(live, tok.ID)
		}
		if i%7 == 0 {
			tok.RevokedAt = tok.CreatedAt.Add(time.Second)
		}
		batch = append(batch, tok)
		if len(batch) == cap(batch) {
			if err := st.ImportTokens(ctx, batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}

	ids := func(args ...string) []string {
		t.Helper()
		out := e.ok("", append([]string{"tokens", "list", "--json"}, args...)...)
		var list []client.Token
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("tokens list %s: not one JSON array: %v\n%.300s…", strings.Join(args, " "), err, out)
		}
		got := make([]string, len(list))
		for i, tok := range list {
			got[i] = tok.ID
		}
		return got
	}
	if got := ids("-a", "workers"); !equalStrings(got, live) {
		t.Fatalf("tokens list -a workers: %d tokens, want the %d live ones in order of creation", len(got), len(live))
	}
	if got := ids("-a", "workers", "--expired"); len(got) != n {
		t.Fatalf("tokens list --expired: %d tokens, want %d", len(got), n)
	}
	if got := ids("--limit", "1500"); !equalStrings(got, live[:1500]) {
		t.Fatalf("tokens list --limit 1500: %d tokens", len(got))
	}
	if got := ids("--revoked", "--limit", "3"); len(got) != 3 {
		t.Fatalf("tokens list --revoked --limit 3: %d tokens", len(got))
	}
	table := e.ok("", "tokens", "list", "--limit", "5")
	if lines := strings.Split(strings.TrimSpace(table), "\n"); len(lines) != 6 || !strings.HasPrefix(lines[0], "ID ") ||
		!strings.HasPrefix(lines[1], live[0]) {
		t.Fatalf("tokens list --limit 5:\n%s", table)
	}
	if errOut := e.fail("tokens", "list", "--limit", "-1"); !strings.Contains(errOut, "--limit -1") {
		t.Fatalf("tokens list --limit -1: %s", errOut)
	}
	// tokens revoke --name pages through the live tokens to find it.
	e.ok("", "tokens", "revoke", "--name", "deploy-24999")

	// The API: a default page of 100 with next; bounds of limit and after.
	cfg := e.config()
	hc := &http.Client{Transport: client.NewTransport(e.srv.URL(), cfg["token"], cfg["session_secret"])}
	get := func(query string) (int, map[string]json.RawMessage) {
		req, _ := http.NewRequest("GET", e.srv.URL()+"/v1/tokens?org=acme&"+query, nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var out map[string]json.RawMessage
		json.Unmarshal(raw, &out)
		return resp.StatusCode, out
	}
	code, page := get("")
	var toks []client.Token
	json.Unmarshal(page["tokens"], &toks)
	if code != 200 || len(toks) != store.DefaultPageLimit || len(page["next"]) == 0 {
		t.Fatalf("default page: %d, %d tokens, next %s", code, len(toks), page["next"])
	}
	var next string
	json.Unmarshal(page["next"], &next)
	code, page = get("limit=1000&after=" + next)
	json.Unmarshal(page["tokens"], &toks)
	if code != 200 || len(toks) != 1000 || toks[0].ID != live[100] {
		t.Fatalf("second page: %d, %d tokens", code, len(toks))
	}
	for _, bad := range []string{"limit=0", "limit=1001", "limit=x", "after=bm9wZQ", "after=%25", "expired=maybe"} {
		if code, page := get(bad); code != http.StatusBadRequest || len(page["error"]) == 0 {
			t.Errorf("%s: %d %v, want a 400", bad, code, page)
		}
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestListsPage: every list of the API and the CLI pages the same way:
// apps, keys, members, invitations, organizations and machines.
func TestListsPage(t *testing.T) {
	e := startLoggedIn(t)
	for i := range 5 {
		e.ok("", "apps", "create", fmt.Sprintf("app-%d", i))
		e.ok("", "orgs", "invite", fmt.Sprintf("user%d@example.com", i))
		e.ok("", "orgs", "rotate-key", "acme")
	}
	token := strings.TrimSpace(e.ok("", "tokens", "create", "deploy", "-a", "app-0"))
	for i := range 5 {
		e.ok("", "orgs", "create", fmt.Sprintf("org-%d", i))
	}
	for i := range 5 {
		e.ok("", "machines", "create", "-a", "app-0", "-t", token, "--name", fmt.Sprintf("m%d", i), "--image", "nginx")
	}
	for _, c := range []struct {
		args []string
		all  int
	}{
		{[]string{"apps", "list", "-o", "acme"}, 5},
		{[]string{"orgs", "keys", "acme"}, 6},
		{[]string{"orgs", "members", "-o", "acme"}, 1},
		{[]string{"orgs", "invitations", "-o", "acme"}, 5},
		{[]string{"orgs", "list"}, 6},
		{[]string{"machines", "list", "-a", "app-0", "-t", token}, 5},
	} {
		count := func(extra ...string) int {
			var list []json.RawMessage
			out := e.ok("", append(append(c.args, "--json"), extra...)...)
			if err := json.Unmarshal([]byte(out), &list); err != nil {
				t.Fatalf("%s: %v\n%s", strings.Join(c.args, " "), err, out)
			}
			return len(list)
		}
		if n := count(); n != c.all {
			t.Errorf("%s: %d rows, want %d", strings.Join(c.args, " "), n, c.all)
		}
		if n := count("--limit", "2"); n != min(2, c.all) {
			t.Errorf("%s --limit 2: %d rows", strings.Join(c.args, " "), n)
		}
	}
	// Pages of two through the client, for every list.
	cfg := e.config()
	cl := client.New(e.srv.URL(), &http.Client{Transport: client.NewTransport(e.srv.URL(), cfg["token"], cfg["session_secret"])})
	ctx := context.Background()
	p := client.Page{Limit: 2}
	check := func(what string, n int, err error, want int) {
		t.Helper()
		if err != nil || n != want {
			t.Errorf("%s by pages of 2: %d, %v; want %d", what, n, err, want)
		}
	}
	apps, err := client.Collect(cl.Apps(ctx, "acme", p))
	check("apps", len(apps), err, 5)
	keys, err := client.Collect(cl.Keys(ctx, "acme", p))
	check("keys", len(keys), err, 6)
	invs, err := client.Collect(cl.Invitations(ctx, "acme", p))
	check("invitations", len(invs), err, 5)
	orgs, err := client.Collect(client.Pages(p, func(p client.Page) ([]client.Organization, string, error) { return cl.OrganizationsPage(ctx, p) }))
	check("organizations", len(orgs), err, 6)
	mc := client.New(e.srv.URL(), &http.Client{Transport: &bearerRT{header: token}})
	ms, err := client.Collect(mc.Machines(ctx, "app-0", client.ListMachinesOptions{}, p))
	check("machines", len(ms), err, 5)
	for i := 1; i < len(ms); i++ {
		if ms[i].CreatedAt.Before(ms[i-1].CreatedAt) {
			t.Fatal("machines out of order across pages")
		}
	}
}

// bearerRT sends a fixed Authorization header.
type bearerRT struct{ header string }

func (b *bearerRT) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", b.header)
	return http.DefaultTransport.RoundTrip(r)
}
