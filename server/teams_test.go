package server_test

// Two people share an organization end to end through the CLI, on two
// replicas of one store behind a load balancer, with open signup closed:
// the admin invites, the invitee signs up with the code, both see the same
// apps, the member mints a deploy token, is removed, and both replicas
// refuse the token within a second although each had just verified it.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caveatdev/caveat/client"
	"github.com/caveatdev/caveat/identity"
	"github.com/caveatdev/caveat/internal/cli"
	"github.com/caveatdev/caveat/internal/servertest"
	"github.com/caveatdev/caveat/server"
	"github.com/caveatdev/caveat/store"
	"github.com/caveatdev/caveat/store/postgres/pgtest"
)

func TestTeamsSQLite(t *testing.T) { testTeams(t, "") }

func TestTeamsPostgres(t *testing.T) { testTeams(t, pgtest.FreshDatabase(t)) }

// person runs the CLI with their own config directory, against one
// replica.
type person struct {
	t      *testing.T
	cfgDir string
	api    string
}

func (p *person) run(stdin string, args ...string) (string, string, int) {
	p.t.Helper()
	var out, errOut bytes.Buffer
	env := map[string]string{"CAVEAT_CONFIG_DIR": p.cfgDir, "CAVEAT_API_URL": p.api}
	code := cli.Main(args, strings.NewReader(stdin), &out, &errOut, func(k string) string { return env[k] })
	return out.String(), errOut.String(), code
}

func (p *person) ok(stdin string, args ...string) string {
	p.t.Helper()
	out, errOut, code := p.run(stdin, args...)
	if code != 0 {
		p.t.Fatalf("caveat %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

func testTeams(t *testing.T, db string) {
	dir := t.TempDir()
	start := func(publicURL string) *server.Server {
		return servertest.Run(t, server.Config{DataDir: dir, DB: db, PublicURL: publicURL, Signup: false})
	}
	// A load balancer in front of both, sending requests to each in turn;
	// its URL is the deployment's public URL.
	var (
		replicas []*url.URL
		turn     atomic.Uint64
	)
	lb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httputil.NewSingleHostReverseProxy(replicas[turn.Add(1)%2]).ServeHTTP(w, r)
	}))
	t.Cleanup(lb.Close)
	a := start(lb.URL)
	b := start(lb.URL)
	addrA, addrB := "http://"+a.Addr().String(), "http://"+b.Addr().String()
	for _, addr := range []string{addrA, addrB} {
		u, _ := url.Parse(addr)
		replicas = append(replicas, u)
	}
	ctx := context.Background()

	// The admin exists already (open signup is closed on this server).
	hash, err := identity.HashPassword("correct horse battery", servertest.CheapArgon2)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Store().CreateUserWithOrganization(ctx, store.Signup{
		User:             store.NewUser{Email: "ada@example.com", PasswordHash: hash, CreatedAt: time.Now()},
		OrganizationSlug: "acme",
	}); err != nil {
		t.Fatal(err)
	}
	ada := &person{t: t, cfgDir: t.TempDir(), api: lb.URL}
	bob := &person{t: t, cfgDir: t.TempDir(), api: lb.URL}
	ada.ok("correct horse battery\n", "auth", "login", "--email", "ada@example.com", "--password-stdin")
	ada.ok("", "apps", "create", "workers")

	var inv struct {
		Code, URL, Email, Role string
		ExpiresAt              time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal([]byte(ada.ok("", "orgs", "invite", "Bob@example.com", "--json")), &inv); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(inv.Code, "cvi1_") || inv.URL != lb.URL+"/aaa/v1/invitations/"+inv.Code || inv.Role != "member" ||
		inv.ExpiresAt.Sub(time.Now()) < 167*time.Hour {
		t.Fatalf("invitation: %+v", inv)
	}
	if out := ada.ok("", "orgs", "invitations"); !strings.Contains(out, "Bob@example.com") {
		t.Fatalf("pending invitations: %s", out)
	}

	// Without the invitation, signup is closed; with it, Bob signs up,
	// joins and is logged in.
	if _, errOut, code := bob.run("bob's long password\n", "auth", "signup", "--email", "bob@example.com", "--password-stdin"); code == 0 ||
		!strings.Contains(errOut, "signup is closed") {
		t.Fatalf("signup without an invitation: %d %s", code, errOut)
	}
	if _, errOut, code := bob.run("bob's long password\n", "auth", "signup", "--email", "eve@example.com", "--password-stdin", "--invite", inv.Code); code == 0 ||
		!strings.Contains(errOut, "another email") {
		t.Fatalf("signup with bob's invitation as eve: %d %s", code, errOut)
	}
	_, errOut, _ := bob.run("bob's long password\n", "auth", "signup", "--email", "bob@example.com", "--password-stdin", "--invite", inv.URL)
	if !strings.Contains(errOut, "member of organization acme") || !strings.Contains(errOut, "logged in") {
		t.Fatalf("signup with the invitation: %s", errOut)
	}

	// Both see the same apps.
	var appsA, appsB []client.App
	json.Unmarshal([]byte(ada.ok("", "apps", "list", "--json")), &appsA)
	json.Unmarshal([]byte(bob.ok("", "apps", "list", "--json")), &appsB)
	if len(appsA) != 1 || fmt.Sprint(appsA) != fmt.Sprint(appsB) {
		t.Fatalf("apps: ada sees %v, bob %v", appsA, appsB)
	}
	var members []client.Member
	json.Unmarshal([]byte(ada.ok("", "orgs", "members", "--json")), &members)
	if len(members) != 2 || members[1].Email != "bob@example.com" || members[1].Role != "member" || members[1].LastLoginAt == nil {
		t.Fatalf("members: %+v", members)
	}

	// Bob mints a deploy token; each replica verifies (and caches) it.
	deploy := strings.TrimSpace(bob.ok("", "tokens", "create", "deploy", "-a", "workers", "--name", "bob's deployer"))
	access := json.RawMessage(fmt.Sprintf(`{"orgid": %d, "appid": %d, "action": "r"}`, appsA[0].OrgID, appsA[0].ID))
	checkers := map[string]*client.Client{"A": client.New(addrA, nil), "B": client.New(addrB, nil)}
	for name, c := range checkers {
		if err := c.Authorize(ctx, deploy, access); err != nil {
			t.Fatalf("bob's token on replica %s: %v", name, err)
		}
	}

	// Ada removes Bob through one replica: his token is listed, and both
	// replicas refuse it within a second.
	var removed client.Removal
	if err := json.Unmarshal([]byte(ada.ok("", "orgs", "remove", "bob@example.com", "--json")), &removed); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	if len(removed.Tokens) != 1 || removed.Tokens[0].Name != "bob's deployer" || removed.Tokens[0].RevokedAt == nil {
		t.Fatalf("removal: %+v", removed)
	}
	for name, c := range checkers {
		for {
			err := c.Authorize(ctx, deploy, access)
			if client.IsStatus(err, http.StatusUnauthorized) && strings.Contains(err.Error(), "revoked") {
				t.Logf("bob's token refused by %s %s after his removal", name, time.Since(at).Round(time.Millisecond))
				break
			}
			if time.Since(at) > time.Second {
				t.Fatalf("bob's token still accepted by %s a second after his removal: %v", name, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if out := ada.ok("", "tokens", "list"); !strings.Contains(out, "bob's deployer") {
		t.Fatalf("tokens list after the removal: %s", out)
	}
	// Bob's session has lost the organization at once.
	if _, errOut, code := bob.run("", "apps", "list", "-o", "acme"); code == 0 || !strings.Contains(errOut, "no organization") {
		t.Fatalf("bob lists apps after his removal: %d %s", code, errOut)
	}
	// The last admin stays.
	if _, errOut, code := ada.run("", "orgs", "leave"); code == 0 || !strings.Contains(errOut, "last admin") {
		t.Fatalf("the last admin leaves: %d %s", code, errOut)
	}
}
