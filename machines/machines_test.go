package machines_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caveatdev/caveat/api"
	"github.com/caveatdev/caveat/machines"
)

// states lists the state of each machine in a list answer, by id.
func states(t *testing.T, r reply) map[string]string {
	t.Helper()
	var ms []api.Machine
	r.json(t, &ms)
	out := map[string]string{}
	for _, m := range ms {
		out[m.ID] = m.State
	}
	return out
}

func TestLifecycle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(t *testing.T) backend) {
		e := newEnv(t, open(t))
		m := e.create("workers", map[string]any{"name": "worker-1", "region": "ams",
			"config": map[string]any{"image": "registry.example/worker:1", "guest": map[string]any{"cpus": 1}, "metadata": map[string]string{"queue": "celery"}}})
		if m.State != "starting" || m.Name != "worker-1" || m.Region != "ams" || len(m.ID) != 14 || len(m.InstanceID) != 26 ||
			!strings.HasPrefix(m.PrivateIP, "fdaa:") || m.ImageRef != (api.ImageRef{Registry: "registry.example", Repository: "worker", Tag: "1"}) {
			t.Fatalf("created machine: %+v", m)
		}
		var cfg map[string]any
		if err := json.Unmarshal(m.Config, &cfg); err != nil || cfg["image"] != "registry.example/worker:1" ||
			fmt.Sprint(cfg["metadata"]) != "map[queue:celery]" || fmt.Sprint(cfg["guest"]) != "map[cpus:1]" {
			t.Fatalf("config %s", m.Config)
		}
		if len(m.Events) != 2 || m.Events[0].Type != "start" || m.Events[0].Status != "starting" || m.Events[1].Type != "launch" {
			t.Fatalf("events of a new machine: %+v", m.Events)
		}
		path := func(rest string) string { return machinePath("workers", "/", m.ID, rest) }

		// The transition ends TransitionTime later, recorded by whoever
		// reads the machine next, with an event dated at its end.
		if got := e.get(m.ID); got.State != "starting" {
			t.Fatalf("state before the transition ended: %s", got.State)
		}
		e.settle()
		got := e.get(m.ID)
		if got.State != "started" || got.Events[0] != (api.MachineEvent{Type: "start", Status: "started", Source: "flyd",
			Timestamp: m.CreatedAt.Add(transition).UnixMilli()}) {
			t.Fatalf("after the transition: %s %+v", got.State, got.Events)
		}

		steps := []struct {
			method, rest string
			body         any
			during, then string
		}{
			{"POST", "/stop", map[string]any{"signal": "SIGTERM", "timeout": "10s"}, "stopping", "stopped"},
			{"POST", "/start", nil, "starting", "started"},
			{"POST", "/suspend", nil, "suspending", "suspended"},
			{"POST", "/start", nil, "starting", "started"},
			{"POST", "/restart?signal=SIGINT&timeout=5", nil, "stopping", "started"},
			{"POST", "/signal", map[string]string{"signal": "SIGUSR1"}, "started", "started"},
			{"POST", "", map[string]any{"config": map[string]any{"image": "worker:2"}}, "replacing", "started"},
			{"POST", "", map[string]any{"config": map[string]any{"image": "worker:3"}, "skip_launch": true}, "stopping", "stopped"},
			{"POST", "/suspend", nil, "", ""}, // illegal: 412
			{"DELETE", "", nil, "destroying", "destroyed"},
		}
		for _, st := range steps {
			r := e.do(st.method, path(st.rest), e.deploy, st.body)
			if st.during == "" {
				e.want(r, http.StatusPreconditionFailed, "is stopped", "suspend needs a machine that is started")
				continue
			}
			e.want(r, http.StatusOK)
			if got := e.get(m.ID); got.State != st.during {
				t.Fatalf("%s %s: state %s, want %s", st.method, st.rest, got.State, st.during)
			}
			if strings.HasPrefix(st.rest, "/restart") {
				// A restart goes on by itself from stopping to starting.
				e.clk.advance(transition + transition/2)
				if got := e.get(m.ID); got.State != "starting" {
					t.Fatalf("restart, one transition later: %s", got.State)
				}
			}
			e.settle()
			if got := e.get(m.ID); got.State != st.then {
				t.Fatalf("%s %s, then: state %s, want %s", st.method, st.rest, got.State, st.then)
			}
		}

		got = e.get(m.ID)
		if got.ImageRef != (api.ImageRef{Registry: "docker.io", Repository: "library/worker", Tag: "3"}) || got.InstanceID == m.InstanceID {
			t.Fatalf("destroyed machine: %+v", got)
		}
		var types []string
		for _, ev := range got.Events {
			types = append(types, ev.Type+"/"+ev.Status+"/"+ev.Source)
		}
		want := []string{"destroy/destroyed/flyd", "destroy/destroying/user", "exit/stopped/flyd", "update/stopping/user",
			"start/started/flyd", "update/replacing/user", "signal/SIGUSR1/user", "start/started/flyd", "restart/starting/flyd", "restart/stopping/user"}
		if !slices.Equal(types, want) {
			t.Fatalf("newest events:\n got %q\nwant %q", types, want)
		}

		// Destroyed machines are listed only with include_deleted, and
		// free their names.
		other := e.create("workers", map[string]any{"name": "worker-1", "skip_launch": true})
		if other.State != "created" {
			t.Fatalf("skip_launch: %s", other.State)
		}
		if got := states(t, e.do("GET", machinePath("workers"), e.deploy, nil)); len(got) != 1 || got[other.ID] != "created" {
			t.Fatalf("list: %v", got)
		}
		if got := states(t, e.do("GET", machinePath("workers", "?include_deleted=true"), e.deploy, nil)); len(got) != 2 || got[m.ID] != "destroyed" {
			t.Fatalf("list with include_deleted: %v", got)
		}
		if got := states(t, e.do("GET", machinePath("workers", "?region=ams&include_deleted=1"), e.deploy, nil)); len(got) != 1 || got[m.ID] != "destroyed" {
			t.Fatalf("list of region ams: %v", got)
		}
		var sum []api.Machine
		e.do("GET", machinePath("workers", "?summary=true"), e.deploy, nil).json(t, &sum)
		if len(sum) != 1 || sum[0].Config != nil || sum[0].Events != nil {
			t.Fatalf("summary: %+v", sum)
		}
		e.want(e.do("GET", path("/wait?state=started&timeout=1"), e.deploy, nil), http.StatusPreconditionFailed, "destroyed")
		if strings.Contains(e.logs.String(), "FlyV1") || strings.Contains(e.logs.String(), "fm2_") {
			t.Fatalf("a token was logged:\n%s", e.logs)
		}
	})
}

func TestIllegalTransitions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(t *testing.T) backend) {
		e := newEnv(t, open(t))
		created := e.create("workers", map[string]any{"skip_launch": true})
		started := e.create("workers", map[string]any{})
		starting := e.create("workers", map[string]any{"name": "slow"})
		e.settle()
		e.clk.advance(-2 * transition) // "slow" is created by now, but not yet started
		e.do("POST", machinePath("workers", "/", starting.ID, "/stop"), e.deploy, nil)
		for _, tc := range []struct {
			id, op string
			status int
			msgs   []string
		}{
			{created.ID, "/stop", 412, []string{"is created", "stop needs a machine that is started or suspended"}},
			{created.ID, "/suspend", 412, []string{"is created", "suspend needs a machine that is started"}},
			{created.ID, "/restart", 412, []string{"is created"}},
			{created.ID, "/signal", 412, []string{"is created", "signal needs"}},
			{started.ID, "/start", 412, []string{"is started", "start needs a machine that is created, stopped or suspended"}},
			{started.ID, "", 412, []string{"is started", "stop it first, or destroy it with force=true"}},
		} {
			method, body := "POST", any(nil)
			switch tc.op {
			case "":
				method = "DELETE"
			case "/signal":
				body = map[string]string{"signal": "SIGHUP"}
			}
			e.want(e.do(method, machinePath("workers", "/", tc.id, tc.op), e.deploy, body), tc.status, tc.msgs...)
		}
		// Nothing changed.
		if created := e.get(created.ID); created.State != "created" || len(created.Events) != 1 {
			t.Fatalf("refused operations changed the machine: %+v", created)
		}
		// A forced destroy of a started machine works; then nothing does.
		e.want(e.do("DELETE", machinePath("workers", "/", started.ID, "?force=true"), e.deploy, nil), 200)
		e.want(e.do("DELETE", machinePath("workers", "/", started.ID, "?force=true"), e.deploy, nil), 412, "is destroying")
		e.settle()
		for _, op := range []string{"/start", "/stop", "/lease"} {
			e.want(e.do("POST", machinePath("workers", "/", started.ID, op), e.deploy, nil), 412, "is destroyed")
		}
		e.want(e.do("POST", machinePath("workers", "/", started.ID), e.deploy, map[string]any{"config": map[string]string{"image": "x"}}), 412, "is destroyed")
	})
}

func TestWait(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(t *testing.T) backend) {
		e := newEnv(t, open(t))
		m := e.create("workers", map[string]any{})
		path := machinePath("workers", "/", m.ID, "/wait")

		// Reaches a state on its own: the transition ends while waiting.
		start := time.Now()
		r := e.do("GET", path+"?state=started&timeout=5", e.deploy, nil)
		e.want(r, 200)
		if string(r.body) != "{\"ok\":true}\n" {
			t.Fatalf("wait answer %q", r.body)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("wait took %s for a %s transition", d, transition)
		}

		// Reaches a state through another request made while waiting.
		done := make(chan reply, 1)
		go func() { done <- e.do("GET", path+"?state=stopped&timeout=10", e.deploy, nil) }()
		time.Sleep(100 * time.Millisecond)
		select {
		case r := <-done:
			t.Fatalf("wait for stopped answered before the stop: %d %s", r.status, r.body)
		default:
		}
		e.want(e.do("POST", machinePath("workers", "/", m.ID, "/stop"), e.deploy, nil), 200)
		select {
		case r := <-done:
			e.want(r, 200)
		case <-time.After(5 * time.Second):
			t.Fatal("wait did not see the stop")
		}

		// Times out with 408, naming the state.
		start = time.Now()
		e.want(e.do("GET", path+"?state=started&timeout=1", e.deploy, nil), http.StatusRequestTimeout,
			"did not become started within 1s", "it is stopped")
		if d := time.Since(start); d < time.Second || d > 3*time.Second {
			t.Fatalf("a 1 s wait took %s", d)
		}
		// A version that is not the machine's is not reached.
		e.want(e.do("GET", path+"?state=stopped&timeout=1&instance_id=01J0000000000000000000000", e.deploy, nil), http.StatusRequestTimeout)
		e.want(e.do("GET", path+"?state=stopped&instance_id="+m.InstanceID, e.deploy, nil), 200)

		for _, q := range []string{"?state=running", "?timeout=61", "?timeout=-1", "?timeout=soon", "?timeout=0", "?timeout=2m"} {
			e.want(e.do("GET", path+q, e.deploy, nil), 400)
		}
		e.want(e.do("GET", machinePath("workers", "/", "00000000000000", "/wait"), e.deploy, nil), 404)
	})
}

func TestLeases(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(t *testing.T) backend) {
		e := newEnv(t, open(t))
		m := e.create("workers", map[string]any{})
		e.settle()
		lease := machinePath("workers", "/", m.ID, "/lease")
		other := e.mint(e.user, "deploy", e.app)

		var got api.LeaseResponse
		r := e.do("POST", lease+"?ttl=30", e.deploy, nil)
		e.want(r, 200)
		r.json(t, &got)
		nonce := got.Data.Nonce
		if got.Status != "success" || len(nonce) != 32 || !strings.HasPrefix(got.Data.Owner, "token:") || got.Data.Version != m.InstanceID ||
			got.Data.ExpiresAt < e.clk.now().Add(29*time.Second).Unix() {
			t.Fatalf("lease: %+v", got)
		}
		// Held: another client cannot take it, and changes need the nonce.
		e.want(e.do("POST", lease, other, nil), 409, "already leased by "+got.Data.Owner)
		stop := machinePath("workers", "/", m.ID, "/stop")
		e.want(e.do("POST", stop, other, nil), 409, "is leased by", "fly-machine-lease-nonce")
		e.want(e.do("POST", stop, other, nil, machines.LeaseNonceHeader, "0123"), 409, "does not hold that lease's nonce")
		e.want(e.do("POST", machinePath("workers", "/", m.ID, "/metadata/k"), e.deploy, map[string]string{"value": "v"}), 409, "is leased")
		e.want(e.do("DELETE", machinePath("workers", "/", m.ID), e.deploy, nil), 409, "is leased")
		// Reading needs no nonce, and never shows it.
		r = e.do("GET", lease, other, nil)
		e.want(r, 200)
		if strings.Contains(string(r.body), nonce) || strings.Contains(string(e.do("GET", machinePath("workers", "/", m.ID), other, nil).body), nonce) {
			t.Fatalf("the nonce is shown to readers: %s", r.body)
		}
		e.want(e.do("POST", stop, other, nil, machines.LeaseNonceHeader, nonce), 200)

		// Refresh needs the nonce; release needs it too.
		e.clk.advance(20 * time.Second)
		r = e.do("POST", lease+"?ttl=60", e.deploy, nil, machines.LeaseNonceHeader, nonce)
		e.want(r, 200)
		r.json(t, &got)
		if got.Data.Nonce != nonce || got.Data.ExpiresAt < e.clk.now().Add(59*time.Second).Unix() {
			t.Fatalf("refreshed lease: %+v", got)
		}
		e.want(e.do("POST", lease, e.deploy, nil, machines.LeaseNonceHeader, "wrong"), 409, "does not hold the nonce")
		e.want(e.do("DELETE", lease, e.deploy, nil), 400, "fly-machine-lease-nonce")
		e.want(e.do("DELETE", lease, e.deploy, nil, machines.LeaseNonceHeader, "wrong"), 409)
		e.want(e.do("DELETE", lease, e.deploy, nil, machines.LeaseNonceHeader, nonce), 200)
		e.want(e.do("GET", lease, e.deploy, nil), 404, "no active lease")
		e.want(e.do("DELETE", lease, e.deploy, nil, machines.LeaseNonceHeader, nonce), 409, "no active lease")

		// Expiry: after its ttl, a lease holds nothing.
		r = e.do("POST", lease+"?ttl=5", other, nil)
		e.want(r, 200)
		r.json(t, &got)
		e.want(e.do("POST", machinePath("workers", "/", m.ID, "/start"), e.deploy, nil), 409, "is leased")
		e.clk.advance(5 * time.Second)
		e.want(e.do("GET", lease, e.deploy, nil), 404)
		e.want(e.do("POST", machinePath("workers", "/", m.ID, "/start"), e.deploy, nil), 200)
		e.want(e.do("POST", lease, e.deploy, nil, machines.LeaseNonceHeader, got.Data.Nonce), 409, "no active lease")
		e.want(e.do("POST", lease, e.deploy, nil), 200)

		// A machine created with a lease comes with its nonce.
		created := e.create("workers", map[string]any{"lease_ttl": 60})
		if len(created.Nonce) != 32 {
			t.Fatalf("create with lease_ttl: nonce %q", created.Nonce)
		}
		e.want(e.do("POST", machinePath("workers", "/", created.ID, "/lease"), other, nil), 409)
		e.want(e.do("POST", machinePath("workers", "/", created.ID, "/lease"), e.deploy, nil, machines.LeaseNonceHeader, created.Nonce), 200)
		if e.get(created.ID).Nonce != "" {
			t.Fatal("get shows the nonce")
		}
		for _, q := range []string{"?ttl=0", "?ttl=3601", "?ttl=x", "?ttl=1.5"} {
			e.want(e.do("POST", lease+q, e.deploy, nil), 400, "ttl")
		}
		e.want(e.do("POST", lease, e.deploy, `{"ttl": 5}`), 400, "takes no body")
		if strings.Contains(e.logs.String(), nonce) {
			t.Fatal("a lease nonce was logged")
		}
	})
}

func TestMetadata(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(t *testing.T) backend) {
		e := newEnv(t, open(t))
		m := e.create("workers", map[string]any{"config": map[string]any{"image": "w", "metadata": map[string]string{"a": "1"}}})
		path := machinePath("workers", "/", m.ID, "/metadata")
		md := func(r reply) map[string]string {
			t.Helper()
			e.want(r, 200)
			var out map[string]string
			r.json(t, &out)
			return out
		}
		if got := md(e.do("GET", path, e.deploy, nil)); fmt.Sprint(got) != "map[a:1]" {
			t.Fatalf("metadata from the config: %v", got)
		}
		if got := md(e.do("POST", path+"/queue", e.deploy, map[string]string{"value": "celery"})); fmt.Sprint(got) != "map[a:1 queue:celery]" {
			t.Fatalf("after set: %v", got)
		}
		if got := md(e.do("DELETE", path+"/a", e.deploy, nil)); fmt.Sprint(got) != "map[queue:celery]" {
			t.Fatalf("after delete: %v", got)
		}
		var cfg struct{ Metadata map[string]string }
		json.Unmarshal(e.get(m.ID).Config, &cfg)
		if fmt.Sprint(cfg.Metadata) != "map[queue:celery]" {
			t.Fatalf("config.metadata: %v", cfg.Metadata)
		}
		e.want(e.do("DELETE", path+"/a", e.deploy, nil), 404, `no metadata key "a"`)
		e.want(e.do("POST", path+"/k", e.deploy, map[string]string{}), 400, `"value" is required`)
		e.want(e.do("POST", path+"/k", e.deploy, map[string]any{"value": 1}), 400)
		e.want(e.do("POST", path+"/"+strings.Repeat("k", 300), e.deploy, map[string]string{"value": "v"}), 400, "metadata key")
		e.want(e.do("POST", path+"/k", e.deploy, map[string]string{"value": strings.Repeat("v", 5000)}), 400, "metadata value")
		// An update replaces the metadata only when its config has some.
		e.settle()
		e.want(e.do("POST", machinePath("workers", "/", m.ID), e.deploy, map[string]any{"config": map[string]any{"image": "w"}}), 200)
		if got := md(e.do("GET", path, e.deploy, nil)); fmt.Sprint(got) != "map[queue:celery]" {
			t.Fatalf("metadata after an update without any: %v", got)
		}
		e.settle()
		e.want(e.do("POST", machinePath("workers", "/", m.ID), e.deploy, map[string]any{"config": map[string]any{"image": "w", "metadata": map[string]string{"b": "2"}}}), 200)
		if got := md(e.do("GET", path, e.deploy, nil)); fmt.Sprint(got) != "map[b:2]" {
			t.Fatalf("metadata after an update with some: %v", got)
		}
	})
}

// TestConcurrentStarts starts one stopped machine from many clients at
// once: exactly one start wins, the others are told it is starting.
func TestConcurrentStarts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(t *testing.T) backend) {
		e := newEnv(t, open(t))
		m := e.create("workers", map[string]any{"skip_launch": true})
		const n = 12
		replies := make([]reply, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { replies[i] = e.do("POST", machinePath("workers", "/", m.ID, "/start"), e.deploy, nil) })
		}
		wg.Wait()
		wins := 0
		for _, r := range replies {
			switch r.status {
			case 200:
				wins++
			case 412:
				if msg := r.errMsg(t); !strings.Contains(msg, "is starting") && !strings.Contains(msg, "is started") {
					t.Fatalf("refused start: %s", msg)
				}
			default:
				t.Fatalf("concurrent start: %d %s", r.status, r.body)
			}
		}
		if wins != 1 {
			t.Fatalf("%d starts succeeded, want 1", wins)
		}
		e.settle()
		var starts int
		for _, ev := range e.get(m.ID).Events {
			if ev.Source == "user" && ev.Type == "start" {
				starts++
			}
		}
		if starts != 1 {
			t.Fatalf("%d start events recorded", starts)
		}
	})
}

func TestMalformedRequests(t *testing.T) {
	db, _ := sqliteOnly(t)
	e := newEnv(t, db)
	m := e.create("workers", map[string]any{})
	e.settle()
	id := machinePath("workers", "/", m.ID)
	big := `{"config": {"image": "w", "x": "` + strings.Repeat("x", 200<<10) + `"}}`
	for _, tc := range []struct {
		method, path string
		body         any
		status       int
		msg          string
	}{
		{"POST", machinePath("workers"), `{"config": `, 400, "invalid JSON body"},
		{"POST", machinePath("workers"), `{"config": {"image": "w"}, "colour": "red"}`, 400, `unknown field "colour"`},
		{"POST", machinePath("workers"), `{"config": {"image": "w"}} {}`, 400, "unexpected data"},
		{"POST", machinePath("workers"), ``, 400, "empty"},
		{"POST", machinePath("workers"), `[]`, 400, ""},
		{"POST", machinePath("workers"), `{}`, 400, `"config" must be a JSON object`},
		{"POST", machinePath("workers"), `{"config": []}`, 400, `"config" must be a JSON object`},
		{"POST", machinePath("workers"), `{"config": {}}`, 400, `"config.image"`},
		{"POST", machinePath("workers"), `{"config": {"image": 7}}`, 400, `"config.image"`},
		{"POST", machinePath("workers"), `{"config": {"image": "a b"}}`, 400, `"config.image"`},
		{"POST", machinePath("workers"), `{"config": {"image": "w", "metadata": [1]}}`, 400, `"config.metadata"`},
		{"POST", machinePath("workers"), `{"config": {"image": "w", "metadata": {"": "x"}}}`, 400, `"config.metadata"`},
		{"POST", machinePath("workers"), `{"config": {"image": "w"}, "name": "Bad Name"}`, 400, "machine name"},
		{"POST", machinePath("workers"), `{"config": {"image": "w"}, "region": "../etc"}`, 400, "region"},
		{"POST", machinePath("workers"), `{"config": {"image": "w"}, "lease_ttl": -1}`, 400, "ttl"},
		{"POST", machinePath("workers"), `{"config": {"image": "w"}, "skip_launch": "yes"}`, 400, `field "skip_launch"`},
		{"POST", machinePath("workers"), big, 413, "larger than"},
		{"POST", id, `{"config": {"image": "w"}, "lease_ttl": 5}`, 400, "lease_ttl"},
		{"POST", id, `{"config": {"image": "w"}, "region": "fra"}`, 400, "cannot move"},
		{"POST", id, `nope`, 400, "invalid JSON"},
		{"POST", id + "/stop", `{"signal": "SIGNOPE"}`, 400, "signal"},
		{"POST", id + "/stop", `{"timeout": "forever"}`, 400, "timeout"},
		{"POST", id + "/stop", `{"timeout": 1e12}`, 400, "timeout"},
		{"POST", id + "/stop", `{"sig": "SIGTERM"}`, 400, `unknown field "sig"`},
		{"POST", id + "/start", `{"force": true}`, 400, "takes no body"},
		{"POST", id + "/signal", ``, 400, "empty"},
		{"POST", id + "/signal", `{"signal": "kill"}`, 400, "signal"},
		{"POST", id + "/restart?timeout=soon", nil, 400, "timeout"},
		{"POST", id + "/restart?force_stop=maybe", nil, 400, "force_stop"},
		{"POST", id + "/restart?signal=SIGNOPE", nil, 400, "signal"},
		{"DELETE", id + "?force=maybe", nil, 400, "force"},
		{"GET", machinePath("workers", "?include_deleted=x"), nil, 400, "include_deleted"},
		{"GET", machinePath("workers", "?summary=2"), nil, 400, "summary"},
		{"GET", machinePath("workers", "/0000000000000a"), nil, 404, "no machine"},
		{"GET", machinePath("workers", "/not-an-id"), nil, 404, "no machine"},
		{"GET", machinePath("Workers"), nil, 404, `no app "Workers"`},
		{"GET", machinePath("nope"), nil, 404, `no app "nope"`},
		{"PUT", id, nil, 405, "not allowed"},
		{"GET", id + "/nowhere", nil, 404, "no route"},
	} {
		t.Run(tc.method+" "+strings.TrimPrefix(tc.path, "/v1/apps/workers/machines")+" "+fmt.Sprint(tc.body)[:min(20, len(fmt.Sprint(tc.body)))], func(t *testing.T) {
			e.t = t
			r := e.do(tc.method, tc.path, e.deploy, tc.body)
			e.want(r, tc.status)
			if tc.msg != "" {
				e.want(r, tc.status, tc.msg)
			}
		})
	}
}

// TestHostileInputs sends many malformed requests: none gets a 5xx or a
// body that is not JSON.
func TestHostileInputs(t *testing.T) {
	db, _ := sqliteOnly(t)
	e := newEnv(t, db)
	m := e.create("workers", map[string]any{})
	bodies := []string{"", "{", "null", "[]", `""`, "0", `{"config": null}`, `{"config": {"image": ""}}`,
		`{"config": {"image": "\u0000"}}`, `{"value": null}`, `{"signal": null}`, `{"timeout": null}`, "\xff\xfe",
		`{"config": {"image": "w", "metadata": {"k": null}}}`, `{"name": "` + strings.Repeat("a", 100) + `", "config": {"image": "w"}}`,
		strings.Repeat("[", 10000), `{"config": {"image": "w"}, "lease_ttl": 1e99}`}
	paths := []string{"", "/" + m.ID, "/" + m.ID + "/stop", "/" + m.ID + "/signal", "/" + m.ID + "/lease", "/" + m.ID + "/metadata/k",
		"/" + m.ID + "/metadata/%00", "/" + m.ID + "/wait?state=%00", "/%00", "/" + strings.Repeat("a", 5000)}
	for _, p := range paths {
		for _, method := range []string{"GET", "POST", "DELETE"} {
			for _, b := range bodies {
				r := e.do(method, "/v1/apps/workers/machines"+p, e.deploy, b, machines.LeaseNonceHeader, "zz\xff")
				if r.status < 400 && method == "POST" && b != "" && b != "null" && !strings.HasPrefix(b, `{"`) {
					t.Errorf("%s %s %q: %d", method, p, b, r.status)
				}
			}
		}
	}
}
