package machines

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat/api"
	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/store"
)

func TestAdvance(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	const d = time.Second
	m := store.Machine{ID: "e0000000000001", State: store.MachineStarted}
	begin(&m, store.MachineStopping, store.MachineStarting, t0, d) // a restart

	if ev := advance(&m, t0.Add(d-time.Nanosecond), d); ev != nil || m.State != store.MachineStopping {
		t.Fatalf("before the deadline: %v %s", ev, m.State)
	}
	// Past both steps at once: each is recorded, dated at its own end.
	ev := advance(&m, t0.Add(5*d), d)
	want := []store.MachineEvent{
		{Type: "restart", Status: "starting", Source: "flyd", Timestamp: t0.Add(d)},
		{Type: "start", Status: "started", Source: "flyd", Timestamp: t0.Add(2 * d)},
	}
	if fmt.Sprint(ev) != fmt.Sprint(want) {
		t.Fatalf("events:\n got %v\nwant %v", ev, want)
	}
	if m.State != store.MachineStarted || m.Next != "" || !m.NextAt.IsZero() || !m.UpdatedAt.Equal(t0.Add(2*d)) {
		t.Fatalf("machine after advance: %+v", m)
	}
	if ev := advance(&m, t0.Add(time.Hour), d); ev != nil {
		t.Fatalf("a machine at rest advanced: %v", ev)
	}
	// Every transition state leads to a state at rest.
	for from, to := range follows {
		for i := 0; i < 3 && to != ""; i++ {
			to = follows[to]
		}
		if to != "" {
			t.Errorf("%s never comes to rest", from)
		}
	}
}

func TestOperationCheck(t *testing.T) {
	m := &store.Machine{ID: "e0000000000001", State: store.MachineStarting, Next: store.MachineStarted,
		NextAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	err := opStop.check(m)
	if status, msg, _ := httpjson.StatusOf(err); status != http.StatusPreconditionFailed ||
		msg != "machine e0000000000001 is starting (it will be started at 2030-01-01T00:00:00Z): stop needs a machine that is started or suspended" {
		t.Fatalf("refusal: %v", err)
	}
	m.State, m.Next = store.MachineStarted, ""
	if err := opStop.check(m); err != nil {
		t.Fatal(err)
	}
	if err := opDestroy.check(m); err == nil || !strings.Contains(err.Error(), "force=true") {
		t.Fatalf("destroy of a started machine: %v", err)
	}
	m.State = store.MachineDestroyed
	if err := opForceDestroy.check(m); err == nil || strings.Contains(err.Error(), "force=true") {
		t.Fatalf("forced destroy of a destroyed machine: %v", err)
	}
}

// imageRef is an api.ImageRef from its four parts, in order.
func imageRef(registry, repository, tag, digest string) api.ImageRef {
	return api.ImageRef{Registry: registry, Repository: repository, Tag: tag, Digest: digest}
}

func TestImageRef(t *testing.T) {
	for in, want := range map[string]api.ImageRef{
		"nginx":                                 imageRef("docker.io", "library/nginx", "latest", ""),
		"nginx:1.27":                            imageRef("docker.io", "library/nginx", "1.27", ""),
		"acme/worker:2":                         imageRef("docker.io", "acme/worker", "2", ""),
		"registry.fly.io/app:deployment-01H":    imageRef("registry.fly.io", "app", "deployment-01H", ""),
		"localhost:5000/w":                      imageRef("localhost:5000", "w", "latest", ""),
		"ghcr.io/o/r@sha256:abc":                imageRef("ghcr.io", "o/r", "", "sha256:abc"),
		"ghcr.io/o/r:v1@sha256:abc":             imageRef("ghcr.io", "o/r", "v1", "sha256:abc"),
		"localhost/x":                           imageRef("localhost", "x", "latest", ""),
		"registry.example:443/team/worker:edge": imageRef("registry.example:443", "team/worker", "edge", ""),
	} {
		if got := parseImageRef(in); got != want {
			t.Errorf("parseImageRef(%q) = %+v, want %+v", in, got, want)
		}
	}
}

func TestIDs(t *testing.T) {
	id := newMachineID()
	if !store.ValidMachineID(id) || id == newMachineID() {
		t.Fatalf("machine id %q", id)
	}
	ulid := regexp.MustCompile(`^[0-7][0-9A-HJKMNP-TV-Z]{25}$`)
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	a, b := newInstanceID(t0), newInstanceID(t0.Add(time.Millisecond))
	if !ulid.MatchString(a) || !ulid.MatchString(b) || a >= b {
		t.Fatalf("instance ids %q, %q: want ULIDs that sort by time", a, b)
	}
	// The time is in the first 10 characters, as ULIDs have it.
	if got := newInstanceID(time.UnixMilli(0)); got[:10] != "0000000000" {
		t.Fatalf("instance id at the epoch: %q", got)
	}
	if n := newNonce(); len(n) != 32 || n == newNonce() {
		t.Fatalf("nonce %q", n)
	}
}

func TestRenderConfig(t *testing.T) {
	for _, tc := range []struct {
		config string
		md     map[string]string
		want   string
	}{
		{`{"image":"w"}`, nil, `{"image":"w"}`},
		{`{"image":"w"}`, map[string]string{"b": "2", "a": "1"}, `{"metadata":{"a":"1","b":"2"},"image":"w"}`},
		{`{}`, map[string]string{"a": "1"}, `{"metadata":{"a":"1"}}`},
	} {
		if got := string(renderConfig(tc.config, tc.md)); got != tc.want {
			t.Errorf("renderConfig(%s, %v) = %s, want %s", tc.config, tc.md, got, tc.want)
		}
	}
}

func TestParseConfig(t *testing.T) {
	c, err := parseConfig([]byte(` {"image": "w:1", "metadata": {"a": "1"}, "guest": {"cpus": 2,  "memory_mb": 256}} `))
	if err != nil {
		t.Fatal(err)
	}
	if c.config != `{"guest":{"cpus":2,"memory_mb":256},"image":"w:1"}` || c.image != "w:1" || fmt.Sprint(c.metadata) != "map[a:1]" {
		t.Fatalf("parsed: %+v", c)
	}
	c, err = parseConfig([]byte(`{"image": "w", "metadata": null}`))
	if err != nil || c.metadata != nil {
		t.Fatalf("null metadata: %+v %v", c, err)
	}
}

func TestNotifier(t *testing.T) {
	n := notifier{chans: map[string]*watchers{}}
	c1, release1 := n.watch("a")
	c2, release2 := n.watch("a")
	release2()
	n.changed("a")
	for _, c := range []<-chan struct{}{c1, c2} {
		select {
		case <-c:
		default:
			t.Fatal("a watcher was not woken")
		}
	}
	release1()
	c3, release3 := n.watch("a")
	select {
	case <-c3:
		t.Fatal("a new watcher saw an old change")
	default:
	}
	release3()
	for i := range 100 {
		_, release := n.watch(fmt.Sprint(i))
		release()
	}
	if len(n.chans) != 0 {
		t.Fatalf("%d entries left after every watcher left", len(n.chans))
	}
}
