package machines_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/caveatdev/caveat/api"
	"github.com/caveatdev/caveat/machines"
	"github.com/caveatdev/caveat/resset"
	"github.com/caveatdev/caveat/store"
)

// secretMetadata is what the tests' machines hold that a token without r
// must never see.
const secretMetadata = "s3cr3t"

// secretImage is the image the tests' machines run, also unreadable.
const secretImage = "registry.example/private-worker:7"

// stoppedWithSecret makes a stopped machine whose metadata holds
// secretMetadata, as the reproduction had it.
func (e *env) stoppedWithSecret() api.Machine {
	e.t.Helper()
	m := e.create("workers", map[string]any{"config": map[string]any{"image": secretImage, "metadata": map[string]string{"secret": secretMetadata}}})
	e.settle()
	e.want(e.do("POST", machinePath("workers", "/", m.ID, "/stop"), e.deploy, nil), 200)
	e.settle()
	got := e.get(m.ID)
	if got.State != "stopped" {
		e.t.Fatalf("setup: machine is %s", got.State)
	}
	return got
}

// noLeak fails if an answer holds anything of m that the token could not
// read.
func (e *env) noLeak(what string, r reply, m api.Machine) {
	e.t.Helper()
	body := string(r.body)
	for name, v := range map[string]string{"metadata": secretMetadata, "image": "private-worker", "instance id": m.InstanceID, "private ip": m.PrivateIP} {
		if v != "" && strings.Contains(body, v) {
			e.t.Errorf("%s: the answer shows the machine's %s to a token that may not read it: %s", what, name, body)
		}
	}
}

// TestUpdateWithWriteOnly is the reproduction: a token attenuated
// to Machines{"":"w"} updated a stopped machine, which started it, and the
// answer showed the machine's metadata. An update that changes the
// machine's state needs C as well, and the answer of a token without r
// holds only the machine's id.
func TestUpdateWithWriteOnly(t *testing.T) {
	db, _ := sqliteOnly(t)
	e := newEnv(t, db)
	m := e.stoppedWithSecret()
	one := machinePath("workers", "/", m.ID)
	w := machinesOnly(t, e.deploy, resset.ActionWrite)
	update := func(token string, skipLaunch bool) reply {
		return e.do("POST", one, token, map[string]any{"config": map[string]string{"image": "registry.example/w:2"}, "skip_launch": skipLaunch})
	}

	// Starting it is control: refused, naming the missing action.
	r := update(w, false)
	e.want(r, http.StatusForbidden, "(Machines)", "C not permitted (permitted: w)")
	e.noLeak("refused update", r, m)
	if got := e.get(m.ID); got.State != "stopped" || got.InstanceID != m.InstanceID {
		t.Fatalf("a refused update changed the machine: %s, instance %s", got.State, got.InstanceID)
	}

	// With skip_launch a stopped machine stays stopped: w is enough, and
	// the answer holds the id and nothing the token may not read.
	r = update(w, true)
	e.want(r, http.StatusOK)
	e.noLeak("update with skip_launch", r, m)
	var fields map[string]json.RawMessage
	r.json(t, &fields)
	if string(fields["id"]) != strconv.Quote(m.ID) || len(fields) != 1 {
		t.Errorf("w-only update answered %s, want only the id", r.body)
	}
	if got := e.get(m.ID); got.State != "stopped" || !strings.Contains(string(got.Config), "registry.example/w:2") {
		t.Fatalf("after a w update with skip_launch: %s %s", got.State, got.Config)
	}

	// With C too it may start the machine; still no r, still no view.
	wC := machinesOnly(t, e.deploy, resset.ActionWrite|resset.ActionControl)
	r = update(wC, false)
	e.want(r, http.StatusOK)
	e.noLeak("wC update", r, m)
	e.settle()
	if got := e.get(m.ID); got.State != "started" {
		t.Fatalf("after a wC update: %s", got.State)
	}
	// A started machine that skip_launch would stop needs C as well.
	r = update(w, true)
	e.want(r, http.StatusForbidden, "(Machines)", "C not permitted")
	if got := e.get(m.ID); got.State != "started" {
		t.Fatalf("a refused skip_launch update stopped the machine: %s", got.State)
	}

	// A token that may read sees the machine as before, metadata
	// included.
	r = update(machinesOnly(t, e.deploy, resset.ActionWrite|resset.ActionControl|resset.ActionRead), false)
	e.want(r, http.StatusOK)
	var v api.Machine
	r.json(t, &v)
	if v.ID != m.ID || !strings.Contains(string(v.Config), secretMetadata) || len(v.Events) == 0 {
		t.Errorf("rwC update answered %s, want the whole machine", r.body)
	}
}

// TestAnswersShowOnlyWhatTheTokenMayRead runs every operation of the
// action table with a token that has exactly the row's action and not r:
// each is allowed or refused as the table says, and no answer shows
// anything of the machine (metadata, image, instance id, private IP) or
// of its lease holder.
func TestAnswersShowOnlyWhatTheTokenMayRead(t *testing.T) {
	db, _ := sqliteOnly(t)
	e := newEnv(t, db)
	bodies := map[string]any{
		"create":       map[string]any{"config": map[string]string{"image": "registry.example/new:1"}, "lease_ttl": 30},
		"update":       map[string]any{"config": map[string]string{"image": "registry.example/w:2"}},
		"signal":       map[string]string{"signal": "SIGHUP"},
		"metadata set": map[string]string{"value": "v"},
	}
	for _, row := range machines.Actions {
		if row.Action == "" {
			continue
		}
		t.Run(row.Operation, func(t *testing.T) {
			e.t = t
			m := e.stoppedWithSecret()
			path := strings.NewReplacer("{app}", "workers", "{id}", m.ID, "{key}", "other").Replace(row.Path)
			one := machinePath("workers", "/", m.ID)
			var headers []string
			switch row.Operation {
			case "stop", "suspend", "restart", "signal":
				e.want(e.do("POST", one+"/start", e.deploy, nil), 200)
				e.settle()
			case "lease get":
				e.want(e.do("POST", one+"/lease", e.deploy, nil), 200)
			case "lease release":
				var l api.LeaseResponse
				r := e.do("POST", one+"/lease", e.deploy, nil)
				e.want(r, 200)
				r.json(t, &l)
				headers = []string{machines.LeaseNonceHeader, l.Data.Nonce}
			case "metadata delete":
				e.want(e.do("POST", one+"/metadata/other", e.deploy, map[string]string{"value": "v"}), 200)
			}
			// The row's action without r; for the rows that need r,
			// everything but r.
			action := resset.ParseAction(row.Action)
			if action == resset.ActionRead {
				action = resset.ActionAll &^ resset.ActionRead
			}
			if row.Operation == "update" {
				action |= resset.ActionControl // it starts the machine
			}
			token := machinesOnly(t, e.deploy, action)
			r := e.do(row.Method, path+"?timeout=1", token, bodies[row.Operation], headers...)
			switch {
			case row.Operation == "list":
				e.want(r, http.StatusOK)
				if strings.TrimSpace(string(r.body)) != "[]" {
					t.Errorf("list without r: %s", r.body)
				}
			case row.Action == "r":
				e.want(r, http.StatusForbidden, "(Machines)", "r not permitted")
			case strings.HasPrefix(row.Operation, "metadata"):
				// Done, and the metadata it would show is not the
				// token's to read.
				if r.status != http.StatusNoContent || len(r.body) != 0 {
					t.Fatalf("%s with %s: %d %s, want 204 and no body", row.Operation, action, r.status, r.body)
				}
			case r.status != http.StatusOK:
				t.Fatalf("%s with %s: %d %s", row.Operation, action, r.status, r.body)
			}
			e.noLeak(row.Operation, r, m)
			var fields map[string]json.RawMessage
			if strings.HasPrefix(string(r.body), "{") {
				r.json(t, &fields)
			}
			switch row.Operation {
			case "create":
				keys := slices.Sorted(maps.Keys(fields))
				if !slices.Equal(keys, []string{"id", "nonce"}) {
					t.Errorf("c-only create answered %s, want only the id and the lease's nonce", r.body)
				}
			case "start":
				if _, ok := fields["previous_state"]; ok {
					t.Errorf("C-only start answered %s: the previous state is the machine's", r.body)
				}
			case "lease acquire / refresh":
				var l api.LeaseResponse
				r.json(t, &l)
				r = e.do("POST", one+"/lease", token, nil, machines.LeaseNonceHeader, l.Data.Nonce)
				e.want(r, http.StatusOK)
				e.noLeak("lease refresh", r, m)
			}
		})
	}

	// A leased machine refuses a change without the nonce; the refusal
	// names the holder only to a token that may read the lease.
	e.t = t
	m := e.stoppedWithSecret()
	e.want(e.do("POST", machinePath("workers", "/", m.ID, "/lease"), e.deploy, nil), 200)
	owner := e.do("GET", machinePath("workers", "/", m.ID, "/lease"), e.deploy, nil)
	var l api.LeaseResponse
	owner.json(t, &l)
	if l.Data.Owner == "" {
		t.Fatalf("lease get: %s", owner.body)
	}
	for _, tc := range []struct {
		mask resset.Action
		show bool
	}{{resset.ActionControl, false}, {resset.ActionControl | resset.ActionRead, true}} {
		token := machinesOnly(t, e.deploy, tc.mask)
		for _, path := range []string{"/start", "/lease"} {
			r := e.do("POST", machinePath("workers", "/", m.ID, path), token, nil)
			e.want(r, http.StatusConflict, "leased")
			if got := strings.Contains(r.errMsg(t), l.Data.Owner); got != tc.show {
				t.Errorf("%s with %s: the holder %s named: %v, want %v (%s)", path, tc.mask, l.Data.Owner, got, tc.show, r.body)
			}
		}
	}
}

// TestOtherOrganizationsAppsAreNotFound: a named token asking for an app
// of another organization gets the 404 of an app that does not exist, on
// every route, naming neither that organization nor the app's id, so
// that app names of other organizations do not leak.
func TestOtherOrganizationsAppsAreNotFound(t *testing.T) {
	db, _ := sqliteOnly(t)
	e := newEnv(t, db)
	m := e.create("workers", map[string]any{})
	u2, o2 := e.signup("bob@example.com", "beta")
	beta := e.mint(u2, "org", store.App{OrgID: o2.ID})
	for _, row := range machines.Actions {
		if row.Action == "" {
			continue
		}
		answer := func(app string) reply {
			path := strings.NewReplacer("{app}", app, "{id}", m.ID, "{key}", "k").Replace(row.Path)
			return e.do(row.Method, path, beta, nil)
		}
		got, unknown := answer("workers"), answer("nope")
		if got.status != http.StatusNotFound || unknown.status != http.StatusNotFound {
			t.Errorf("%s: another organization's app: %d %s; an unknown app: %d %s; want 404 for both",
				row.Operation, got.status, got.body, unknown.status, unknown.body)
			continue
		}
		if want := strings.ReplaceAll(string(unknown.body), "nope", "workers"); string(got.body) != want {
			t.Errorf("%s: another organization's app answered %s, an unknown app %s", row.Operation, got.body, unknown.body)
		}
		for _, id := range []uint64{e.org.ID, e.app.ID} {
			if strings.Contains(got.errMsg(t), strconv.FormatUint(id, 10)) {
				t.Errorf("%s: the answer names id %d: %s", row.Operation, id, got.body)
			}
		}
	}
}
