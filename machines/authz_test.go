package machines_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/machines"
	"github.com/caveatdev/caveat/middleware"
	"github.com/caveatdev/caveat/resset"
	"github.com/caveatdev/caveat/store"
)

// TestAutoscalerToken is the matrix: a deploy token attenuated
// offline to rC on machines can list, get, wait, start and stop, and is
// refused create, destroy and update with a 403 naming the Machines
// caveat and the missing action; other apps' tokens are refused too, and
// other organizations' tokens do not find the app.
func TestAutoscalerToken(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(t *testing.T) backend) {
		e := newEnv(t, open(t))
		m := e.create("workers", map[string]any{"skip_launch": true})
		rC := machinesOnly(t, e.deploy, resset.ActionRead|resset.ActionControl)
		one := machinePath("workers", "/", m.ID)

		if got := states(t, e.do("GET", machinePath("workers"), rC, nil)); got[m.ID] != "created" || len(got) != 1 {
			t.Fatalf("rC list: %v", got)
		}
		e.want(e.do("GET", one, rC, nil), 200)
		e.want(e.do("POST", one+"/start", rC, nil), 200)
		e.want(e.do("GET", one+"/wait?state=started&timeout=5", rC, nil), 200)
		e.want(e.do("POST", one+"/stop", rC, nil), 200)
		e.want(e.do("GET", one+"/wait?state=stopped&timeout=5", rC, nil), 200)

		denied := func(r reply, action string) {
			t.Helper()
			e.want(r, http.StatusForbidden)
			want := `caveat 3 (Machines): unauthorized for action: action ` + action + ` on machine "` + m.ID + `": ` + action + ` not permitted (permitted: rC)`
			if action == "c" {
				want = `caveat 3 (Machines): unauthorized for action: action c on machine "": c not permitted (permitted: rC)`
			}
			if got := r.errMsg(t); got != want {
				t.Fatalf("refusal of %s:\n got %q\nwant %q", action, got, want)
			}
		}
		denied(e.do("POST", machinePath("workers"), rC, map[string]any{"config": map[string]string{"image": "w"}}), "c")
		denied(e.do("DELETE", one, rC, nil), "d")
		denied(e.do("DELETE", one+"?force=true", rC, nil), "d")
		denied(e.do("POST", one, rC, map[string]any{"config": map[string]string{"image": "w"}}), "w")
		denied(e.do("POST", one+"/metadata/k", rC, map[string]string{"value": "v"}), "w")
		denied(e.do("DELETE", one+"/metadata/k", rC, nil), "w")
		// A refused request changes nothing, and is refused before its
		// body is looked at.
		denied(e.do("POST", machinePath("workers"), rC, "not json"), "c")
		if got := states(t, e.do("GET", machinePath("workers", "?include_deleted=true"), e.deploy, nil)); len(got) != 1 || got[m.ID] != "stopped" {
			t.Fatalf("after refusals: %v", got)
		}

		// An app without machines lists as [] for rC: the Machines caveat
		// says nothing about the app itself.
		r := e.do("GET", machinePath("other"), machinesOnly(t, e.mint(e.user, "org", e.app), resset.ActionRead|resset.ActionControl), nil)
		e.want(r, 200)
		if strings.TrimSpace(string(r.body)) != "[]" {
			t.Fatalf("rC list of an empty app: %s", r.body)
		}
		// A token restricted to another machine sees the app, but none
		// of its machines.
		r = e.do("GET", machinePath("workers"), machinesOnlyIDs(t, e.deploy, "0123456789abcd"), nil)
		e.want(r, 200)
		if strings.TrimSpace(string(r.body)) != "[]" {
			t.Fatalf("list with a token for another machine: %s", r.body)
		}
		e.want(e.do("GET", one, machinesOnlyIDs(t, e.deploy, "0123456789abcd"), nil), 403, "Machines", "not allowed")

		// Another app's token: its own Apps caveat refuses.
		otherApp := e.mint(e.user, "deploy", e.other)
		e.want(e.do("GET", one, otherApp, nil), 403, "(Apps)", "app "+strconv.FormatUint(e.app.ID, 10))
		e.want(e.do("GET", machinePath("workers"), otherApp, nil), 403, "(Apps)")
		e.want(e.do("POST", one+"/start", otherApp, nil), 403, "(Apps)")

		// Another organization's token finds no app of that name, as if
		// it did not exist (so that app names do not leak across
		// organizations); once its own organization has an app of that
		// name, it finds only its own.
		u2, o2 := e.signup("bob@example.com", "beta")
		beta := e.mint(u2, "org", store.App{OrgID: o2.ID})
		e.want(e.do("GET", one, beta, nil), 404, `no app "workers"`)
		e.want(e.do("GET", machinePath("workers"), beta, nil), 404, `no app "workers"`)
		e.want(e.do("GET", machinePath("nope"), beta, nil), 404, `no app "nope"`)
		if _, err := e.db.CreateApp(context.Background(), store.NewApp{OrgID: o2.ID, Name: "workers", CreatedAt: e.clk.now()}); err != nil {
			t.Fatal(err)
		}
		e.want(e.do("GET", one, beta, nil), 404, "no machine")
		e.want(e.do("POST", one+"/stop", beta, nil), 404, "no machine")
		if r := e.do("GET", machinePath("workers"), beta, nil); strings.TrimSpace(string(r.body)) != "[]" {
			t.Fatalf("another organization's app of the same name: %s", r.body)
		}

		// A read-only token reads and is refused the rest.
		ro := e.mint(e.user, "readonly", e.app)
		e.want(e.do("GET", one, ro, nil), 200)
		e.want(e.do("POST", one+"/start", ro, nil), 403, "(Organization)", "C not permitted")

		// No token, a broken one, a revoked one.
		e.want(e.do("GET", one, "", nil), 401, "no token")
		e.want(e.do("GET", one, "FlyV1 fm2_bogus", nil), 401, "malformed token")
		e.want(e.do("GET", machinePath("workers"), "Bearer "+strings.TrimPrefix(rC, "FlyV1 "), nil), 200)
	})
}

// TestActionTable checks the published table against what each endpoint
// enforces: a token without the row's action is refused for that action,
// and a token with only the row's action (and r, to find the machine) is
// not refused by its Machines caveat.
func TestActionTable(t *testing.T) {
	db, _ := sqliteOnly(t)
	e := newEnv(t, db)
	r := e.do("GET", "/v1/machines/actions", "", nil)
	e.want(r, 200)
	var table struct{ Actions []machines.ActionEntry }
	r.json(t, &table)
	if len(table.Actions) != len(machines.Actions) {
		t.Fatalf("served table has %d rows, want %d", len(table.Actions), len(machines.Actions))
	}
	want := map[string]string{"list": "r", "get": "r", "wait": "r", "start": "C", "stop": "C", "suspend": "C", "restart": "C",
		"signal": "C", "create": "c", "update": "w", "destroy": "d", "metadata get": "r", "metadata set": "w", "metadata delete": "w"}
	for _, row := range table.Actions {
		if w, ok := want[row.Operation]; ok && row.Action != w {
			t.Errorf("%s needs %q in the table, want %q", row.Operation, row.Action, w)
		}
		delete(want, row.Operation)
	}
	if len(want) != 0 {
		t.Fatalf("operations missing from the table: %v", want)
	}

	bodies := map[string]any{"create": map[string]any{"config": map[string]string{"image": "w"}},
		"update": map[string]any{"config": map[string]string{"image": "w"}}, "signal": map[string]string{"signal": "SIGHUP"},
		"metadata set": map[string]string{"value": "v"}}
	for _, row := range table.Actions {
		if row.Action == "" || row.Operation == "list" {
			continue
		}
		t.Run(row.Operation, func(t *testing.T) {
			e.t = t
			m := e.create("workers", map[string]any{})
			e.settle()
			path := strings.NewReplacer("{app}", "workers", "{id}", m.ID, "{key}", "k").Replace(row.Path)
			action := resset.ParseAction(row.Action)
			without := machinesOnly(t, e.deploy, resset.ActionAll&^action)
			r := e.do(row.Method, path+"?timeout=1", without, bodies[row.Operation])
			e.want(r, 403, "(Machines)", row.Action+" not permitted")
			mask := action | resset.ActionRead
			if row.Operation == "update" {
				mask |= resset.ActionControl // it starts the machine again: a change of state
			}
			with := machinesOnly(t, e.deploy, mask)
			r = e.do(row.Method, path+"?timeout=1", with, bodies[row.Operation])
			if r.status == 403 {
				t.Fatalf("%s with %s+r: %s", row.Operation, row.Action, r.body)
			}
		})
	}
}

// TestSessions resolves app names for logged-in users: in their
// organizations only, and a 409 naming them when ambiguous.
func TestSessions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(t *testing.T) backend) {
		e := newEnv(t, open(t))
		ctx := context.Background()
		m := e.create("workers", map[string]any{})
		ada := e.session(e.user.ID)
		e.want(e.do("GET", machinePath("workers", "/", m.ID), ada, nil), 200)
		if got := states(t, e.do("GET", machinePath("workers"), ada, nil)); len(got) != 1 {
			t.Fatalf("session list: %v", got)
		}
		// A session attenuated to rC on machines.
		e.want(e.do("DELETE", machinePath("workers", "/", m.ID), machinesOnly(t, ada, resset.ActionRead|resset.ActionControl), nil), 403, "(Machines)")

		// Bob is in his own organization only: Ada's app is not his.
		bob, beta := e.signup("bob@example.com", "beta")
		bobs := e.session(bob.ID)
		e.want(e.do("GET", machinePath("workers", "/", m.ID), bobs, nil), 404, `no app "workers"`)
		e.want(e.do("GET", machinePath("workers"), machinesOnly(t, bobs, resset.ActionRead), nil), 404)

		// Bob's own "workers" is found for him; Ada's still is for her.
		if _, err := e.db.CreateApp(ctx, store.NewApp{OrgID: beta.ID, Name: "workers", CreatedAt: e.clk.now()}); err != nil {
			t.Fatal(err)
		}
		e.want(e.do("GET", machinePath("workers", "/", m.ID), bobs, nil), 404, "no machine")
		e.want(e.do("GET", machinePath("workers", "/", m.ID), ada, nil), 200)

		// Ada joins beta: "workers" is now ambiguous for her sessions.
		if err := e.db.AddMember(ctx, store.Membership{OrgID: beta.ID, UserID: e.user.ID, Role: store.RoleMember, CreatedAt: e.clk.now()}); err != nil {
			t.Fatal(err)
		}
		e.want(e.do("GET", machinePath("workers", "/", m.ID), ada, nil), 409, `app "workers" exists in several of your organizations (acme, beta)`)
		// Named tokens are not: they belong to one organization.
		e.want(e.do("GET", machinePath("workers", "/", m.ID), e.deploy, nil), 200)
	})
}

// failing is an authenticator whose checks cannot be made: its
// Principal fails when auth is set; otherwise its principals' Allow
// fails for every machine.
type failing struct {
	org  uint64
	auth bool
}

func (f failing) Principal(context.Context, string) (middleware.Principal, error) {
	if f.auth {
		return nil, errors.New("authority unreachable")
	}
	return f, nil
}
func (f failing) Allow(_ context.Context, a *flyio.Access) error {
	if a.Machine == nil {
		return nil // the app may be read; its machines cannot be checked
	}
	return errors.New("authority unreachable")
}
func (f failing) TokenID() string { return "" }
func (f failing) OrgID() uint64   { return f.org }
func (f failing) UserID() uint64  { return 0 }

// TestAuthorityUnavailable: when a token cannot be checked, the answer is
// 503, never a list with the machines left out.
func TestAuthorityUnavailable(t *testing.T) {
	db, _ := sqliteOnly(t)
	e := newEnv(t, db)
	m := e.create("workers", map[string]any{})
	for _, auth := range []failing{{org: e.org.ID}, {org: e.org.ID, auth: true}} {
		svc, err := machines.New(machines.Config{Store: db, Auth: auth})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(svc.Handler())
		e.srv = srv
		for _, path := range []string{machinePath("workers"), machinePath("workers", "/", m.ID)} {
			e.want(e.do("GET", path, e.deploy, nil), http.StatusServiceUnavailable, "authority unavailable")
		}
		srv.Close()
	}
}

// countingMemberships counts the membership reads of the store.
type countingMemberships struct {
	backend
	reads atomic.Int64
}

func (c *countingMemberships) GetMembership(ctx context.Context, orgID, userID uint64) (store.Membership, error) {
	c.reads.Add(1)
	return c.backend.GetMembership(ctx, orgID, userID)
}

// TestSessionMembershipReadOnce: a session's membership is read once per
// request — resolving the app's name and clearing the app's access and
// each machine's all read it through the authority's request scope
// (middleware.Scope) — however many machines the request shows.
func TestSessionMembershipReadOnce(t *testing.T) {
	db, _ := sqliteOnly(t)
	c := &countingMemberships{backend: db}
	e := newEnv(t, c)
	m := e.create("workers", map[string]any{})
	ada := e.session(e.user.ID)
	check := func(name, path string) {
		t.Helper()
		before := c.reads.Load()
		e.want(e.do("GET", path, ada, nil), 200)
		if got := c.reads.Load() - before; got != 1 {
			t.Errorf("%s: %d membership reads, want 1", name, got)
		}
	}
	check("get a machine", machinePath("workers", "/", m.ID))
	check("list of one machine", machinePath("workers"))
	for range 5 {
		e.create("workers", map[string]any{})
	}
	check("list of six machines", machinePath("workers"))

	// Apps of the same name in organizations Ada does not belong to cost
	// her nothing: anyone may create organizations and name an app like
	// hers, and if each were checked, a thousand of them would make every
	// request of hers a thousand reads.
	for i := range 20 {
		_, o := e.signup(fmt.Sprintf("mallory%d@example.com", i), fmt.Sprintf("mallory%d", i))
		if _, err := db.CreateApp(context.Background(), store.NewApp{OrgID: o.ID, Name: "workers", CreatedAt: e.clk.now()}); err != nil {
			t.Fatal(err)
		}
	}
	check("get a machine, with 20 other organizations' apps of the name", machinePath("workers", "/", m.ID))

	// Each request reads afresh: a scope is never shared.
	check("the same machine again", machinePath("workers", "/", m.ID))
}
