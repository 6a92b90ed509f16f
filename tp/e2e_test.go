package tp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/auth"
	"github.com/caveatdev/caveat/internal/fake"
	"github.com/caveatdev/caveat/tp"
)

func user42() caveat.Caveat { u := auth.FlyioUserID(42); return &u }

// immediate discharges every request with FlyioUserID(42), after checking
// that the ticket carries ConfineUser(42).
func immediate(t testing.TB) tp.DecideFunc {
	return func(_ context.Context, req *tp.Request) (tp.Decision, error) {
		wantConfineUser(t, req.Ticket.Caveats)
		return tp.Discharge(user42()), nil
	}
}

func TestImmediate(t *testing.T) {
	d := newDischarger(t, "aaa", immediate(t))
	m := mint(t, d)
	for _, tc := range []struct{ name, in, prefix string }{
		{"scheme", "FlyV1 " + m.String(), "FlyV1 "},
		{"bearer scheme", "Bearer " + m.String(), "FlyV1 "},
		{"no scheme", m.String(), "fm2_"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &tp.Client{HTTP: d.ts.Client()}
			out, err := c.FetchDischarges(context.Background(), tc.in, firstParty)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(out, tc.prefix) || strings.HasPrefix(caveat.StripScheme(out), "FlyV1") {
				t.Fatalf("header %.40q…, want it to start with %q", out, tc.prefix)
			}
			if !strings.HasPrefix(caveat.StripScheme(out), m.String()+",") {
				t.Fatalf("the permission token is not kept first: %.60q", out)
			}
			ds := newDischarges(t, m, out)
			if len(ds) != 1 {
				t.Fatalf("%d new tokens, want 1 discharge", len(ds))
			}
			dis := ds[0]
			if !dis.IsProof() || dis.Location != d.loc || !bytes.Equal(dis.Nonce.KID, m.ThirdPartyTickets()[0].Ticket) {
				t.Fatalf("discharge: proof %v, location %q, KID matches %v", dis.IsProof(), dis.Location,
					bytes.Equal(dis.Nonce.KID, m.ThirdPartyTickets()[0].Ticket))
			}
			if got := bindingOf(t, dis); !bytes.Equal(got, caveat.BindingID(m)) {
				t.Fatalf("discharge bound to %x, want %x", got, caveat.BindingID(m))
			}
			cs := mustVerify(t, out, d)
			if ids := attested(t, cs); !slices.Equal(ids, []uint64{42}) {
				t.Fatalf("attested users %v, want [42]", ids)
			}
			// Untrusted, the attestation is dropped but the discharge verifies.
			b, _ := caveat.ParseBundle(out)
			v, err := b.Verify(firstParty, caveat.StaticKey(rootKey), nil)
			if err != nil {
				t.Fatalf("untrusted verify: %v", err)
			}
			if ids := attested(t, v.Caveats); len(ids) != 0 {
				t.Fatalf("untrusted verify: attestations %v", ids)
			}
		})
	}
	paths, _ := d.seen()
	if want := "/aaa/v1/.well-known/macfly/3p"; len(paths) != 3 || paths[0] != want {
		t.Fatalf("requests %q, want 3 × %s", paths, want)
	}
}

// TestBindingID checks that BindingID is what caveat's Bind writes.
func TestBindingID(t *testing.T) {
	d := newDischarger(t, "aaa", immediate(t))
	m := mint(t, d)
	probe, err := caveat.Mint(caveat.SigningKey("k"), caveat.NewNonce(nil, true), "x")
	if err != nil {
		t.Fatal(err)
	}
	if err := probe.Bind(m); err != nil {
		t.Fatal(err)
	}
	if got := bindingOf(t, probe); len(got) == 0 || !bytes.Equal(got, caveat.BindingID(m)) {
		t.Fatalf("Bind wrote %x, BindingID says %x", got, caveat.BindingID(m))
	}
}

// TestBoundToParent shows what binding buys: the discharge fetched for an
// attenuated token does not satisfy the token it was attenuated from.
func TestBoundToParent(t *testing.T) {
	d := newDischarger(t, "aaa", immediate(t))
	base := mint(t, d)
	child, err := caveat.Parse(base.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Add(&caveat.ValidityWindow{NotBefore: 0, NotAfter: 1 << 39}); err != nil {
		t.Fatal(err)
	}
	c := &tp.Client{HTTP: d.ts.Client(), RequireBinding: true}
	out, err := c.FetchDischarges(context.Background(), child.String(), firstParty)
	if err != nil {
		t.Fatal(err)
	}
	mustVerify(t, out, d)
	dis := newDischarges(t, child, out)[0]

	b, err := caveat.ParseBundle(base.String() + "," + dis.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Verify(firstParty, caveat.StaticKey(rootKey), trusted(d)); !errors.Is(err, caveat.ErrWrongParent) {
		t.Fatalf("discharge of the child used with its parent: %v, want ErrWrongParent", err)
	}
}

// TestUnboundRequest: a client that sends no parent_binding (the reference
// client) gets an unbound discharge, and Decide learns it.
func TestUnboundRequest(t *testing.T) {
	var bound atomic.Int32
	d := newDischarger(t, "aaa", func(_ context.Context, req *tp.Request) (tp.Decision, error) {
		if req.Bound {
			bound.Add(1)
		}
		return tp.Discharge(user42()), nil
	})
	m := mint(t, d)
	a := do(t, "POST", tp.InitURL(d.loc), "application/json", initBody(d.ticket(t, m)))
	if a.status != http.StatusCreated || bound.Load() != 0 {
		t.Fatalf("answer %d %s, bound %d", a.status, a.raw, bound.Load())
	}
	dis, err := caveat.Parse(a.body["discharge"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if bindingOf(t, dis) != nil {
		t.Fatal("discharge bound though no binding was asked for")
	}
	mustVerify(t, m.String()+","+dis.String(), d)
}

func TestPollFlow(t *testing.T) {
	flows := make(chan tp.FlowID, 1)
	d := newDischarger(t, "aaa", func(_ context.Context, req *tp.Request) (tp.Decision, error) {
		flows <- req.Flow
		return tp.Poll(), nil
	})
	m := mint(t, d)
	sl := &noSleep{}
	sl.onWait = func(n int) {
		if n == 4 {
			id := <-flows
			p, err := d.srv.Lookup(context.Background(), id)
			if err != nil {
				t.Error(err)
				return
			}
			wantConfineUser(t, p.Caveats)
			if err := d.srv.Complete(context.Background(), id, user42()); err != nil {
				t.Error(err)
			}
		}
	}
	c := &tp.Client{HTTP: d.ts.Client(), Sleep: sl.sleep, MaxPollInterval: 4 * time.Second}
	out, err := c.FetchDischarges(context.Background(), "FlyV1 "+m.String(), firstParty)
	if err != nil {
		t.Fatal(err)
	}
	if ids := attested(t, mustVerify(t, out, d)); !slices.Equal(ids, []uint64{42}) {
		t.Fatalf("attested %v", ids)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
	if !slices.Equal(sl.waits, want) {
		t.Fatalf("waits %v, want %v", sl.waits, want)
	}
	paths, _ := d.seen()
	if len(paths) != 6 { // init, 4 × 202, 200
		t.Fatalf("%d requests, want 6: %q", len(paths), paths)
	}
}

var pollURLRE = regexp.MustCompile(`^http://127\.0\.0\.1:\d+/aaa/v1/\.well-known/macfly/3p/poll/[0-9a-f]{32}$`)

// TestPollAnswers checks the poll endpoint's answers exactly (spec §8.3).
func TestPollAnswers(t *testing.T) {
	flows := make(chan tp.FlowID, 2)
	d := newDischarger(t, "aaa", func(_ context.Context, req *tp.Request) (tp.Decision, error) {
		flows <- req.Flow
		return tp.Poll(), nil
	})
	m := mint(t, d)
	ctx := context.Background()
	start := func() (string, tp.FlowID) {
		a := do(t, "POST", tp.InitURL(d.loc), "application/json", initBody(d.ticket(t, m)))
		u, _ := a.body["poll_url"].(string)
		if a.status != http.StatusCreated || !pollURLRE.MatchString(u) || len(a.body) != 1 {
			t.Fatalf("init answered %d %s", a.status, a.raw)
		}
		return u, <-flows
	}
	check := func(u string, status int, field, value string) {
		t.Helper()
		a := do(t, "GET", u, "", "")
		if a.status != status || a.contentType != "application/json" || len(a.body) != 1 {
			t.Fatalf("poll answered %d %q %s, want %d with only %q", a.status, a.contentType, a.raw, status, field)
		}
		if got, _ := a.body[field].(string); value != "" && got != value || value == "" && got == "" {
			t.Fatalf("poll answered %s, want %s = %q", a.raw, field, value)
		}
	}

	t.Run("discharge", func(t *testing.T) {
		u, id := start()
		check(u, 202, "error", "not ready")
		check(u, 202, "error", "not ready")
		if err := d.srv.Complete(ctx, id, user42()); err != nil {
			t.Fatal(err)
		}
		if err := d.srv.Fail(ctx, id, "too late"); !errors.Is(err, tp.ErrFinished) {
			t.Fatalf("Fail after Complete: %v, want ErrFinished", err)
		}
		a := do(t, "GET", u, "", "")
		tok, _ := a.body["discharge"].(string)
		if a.status != 200 || !strings.HasPrefix(tok, "fm2_") {
			t.Fatalf("poll answered %d %s", a.status, a.raw)
		}
		mustVerify(t, m.String()+","+tok, d)
		check(u, 404, "error", "not found")
		check(u, 404, "error", "not found")
		if err := d.srv.Complete(ctx, id, user42()); !errors.Is(err, tp.ErrNotFound) {
			t.Fatalf("Complete after collection: %v, want ErrNotFound", err)
		}
	})
	t.Run("failure", func(t *testing.T) {
		u, id := start()
		if err := d.srv.Fail(ctx, id, "user said no"); err != nil {
			t.Fatal(err)
		}
		check(u, 200, "error", "user said no")
		check(u, 404, "error", "not found")
	})
	t.Run("unknown secret", func(t *testing.T) {
		u, _ := start()
		other := u[:len(u)-32] + strings.Repeat("0", 32)
		check(other, 404, "error", "not found")
		check(u+"/x", 404, "error", "not found")
		check(strings.ToUpper(u[:len(u)-32])+u[len(u)-32:], 404, "error", "not found")
	})
	t.Run("complete refuses bad caveats", func(t *testing.T) {
		_, id := start()
		bad := &caveat.Caveat3P{Location: "x"}
		if err := d.srv.Complete(ctx, id, bad); err == nil {
			t.Fatal("Complete took a third-party caveat for a discharge")
		}
		if p, err := d.srv.Lookup(ctx, id); err != nil || p.State != tp.Pending {
			t.Fatalf("after a refused Complete: %v %v", p, err)
		}
	})
}

// TestUserInteractive runs the user flow twice in one bundle: the first
// third party sends the user to its page, which sets a session cookie; the
// client, which has a cookie jar, runs the flows one after another, so the
// second third party (on the same host) sees the cookie and discharges at
// once.
func TestUserInteractive(t *testing.T) {
	decide := func(_ context.Context, req *tp.Request) (tp.Decision, error) {
		if c, err := req.HTTP.Cookie("session"); err == nil && c.Value == "alice" {
			return tp.Discharge(user42()), nil
		}
		return tp.UserInteractive(), nil
	}
	a := newDischarger(t, "aaa", decide)
	b := a.addOnSameHost("bbb", decide)

	var visited []string
	a.setUser(func(w http.ResponseWriter, r *http.Request) {
		secret := strings.TrimPrefix(r.URL.Path, "/aaa/v1/login/")
		p, err := a.srv.LookupUser(r.Context(), secret)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		wantConfineUser(t, p.Caveats)
		if !p.Bound {
			t.Error("the flow is not bound")
		}
		if _, err := a.srv.LookupUser(r.Context(), strings.Repeat("a", 32)); !errors.Is(err, tp.ErrNotFound) {
			t.Errorf("LookupUser of a made-up secret: %v", err)
		}
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "alice", Path: "/"})
		if err := a.srv.Complete(r.Context(), p.ID, user42()); err != nil {
			t.Error(err)
		}
		w.Write([]byte("logged in"))
	})

	m := mint(t, a, b)
	jar, _ := cookiejar.New(nil)
	hc := a.ts.Client()
	hc.Jar = jar
	c := &tp.Client{
		HTTP:  hc,
		Sleep: (&noSleep{}).sleep,
		UserURL: func(ctx context.Context, u string) error {
			visited = append(visited, u)
			if !strings.HasPrefix(u, a.loc+"/login/") {
				t.Errorf("user URL %q", u)
			}
			// A user URL is never a poll URL.
			if ans := do(t, "GET", a.loc+"/.well-known/macfly/3p/poll/"+u[len(u)-32:], "", ""); ans.status != 404 {
				t.Errorf("the user secret polls: %d %s", ans.status, ans.raw)
			}
			resp, err := hc.Get(u)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("user page answered %d", resp.StatusCode)
			}
			return nil
		},
	}
	out, err := c.FetchDischarges(context.Background(), m.String(), firstParty)
	if err != nil {
		t.Fatal(err)
	}
	if len(visited) != 1 {
		t.Fatalf("user sent to %d pages, want 1 (the flows ran in parallel, or the cookie was not kept)", len(visited))
	}
	if ids := attested(t, mustVerify(t, out, a, b)); !slices.Equal(ids, []uint64{42, 42}) {
		t.Fatalf("attested %v", ids)
	}
}

// TestParallel: without a cookie jar, flows to several third parties run at
// the same time. Each Decide waits for the other's request to arrive.
func TestParallel(t *testing.T) {
	var arrived sync.WaitGroup
	arrived.Add(2)
	decide := func(ctx context.Context, _ *tp.Request) (tp.Decision, error) {
		arrived.Done()
		done := make(chan struct{})
		go func() { arrived.Wait(); close(done) }()
		select {
		case <-done:
			return tp.Discharge(user42()), nil
		case <-time.After(5 * time.Second):
			return tp.Refuse(http.StatusConflict, "the other request never came: not parallel"), nil
		}
	}
	a := newDischarger(t, "aaa", decide)
	b := newDischarger(t, "bbb", decide)
	m := mint(t, a, b)
	c := &tp.Client{}
	out, err := c.FetchDischarges(context.Background(), m.String(), firstParty)
	if err != nil {
		t.Fatal(err)
	}
	mustVerify(t, out, a, b)
}

func TestRefusal(t *testing.T) {
	d := newDischarger(t, "aaa", func(context.Context, *tp.Request) (tp.Decision, error) {
		return tp.Refuse(http.StatusUnauthorized, "log in first"), nil
	})
	m := mint(t, d)
	_, err := (&tp.Client{}).FetchDischarges(context.Background(), m.String(), firstParty)
	var e *tp.Error
	if !errors.As(err, &e) || !errors.Is(err, tp.ErrRefused) {
		t.Fatalf("error %v, want a *tp.Error wrapping ErrRefused", err)
	}
	if e.Location != d.loc || e.Step != "init" || e.Status != 401 || e.Message != "log in first" {
		t.Fatalf("error %+v", e)
	}
	for _, want := range []string{d.loc, "init", `"log in first"`, "401"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestNoUserCallback(t *testing.T) {
	d := newDischarger(t, "aaa", func(context.Context, *tp.Request) (tp.Decision, error) {
		return tp.UserInteractive(), nil
	})
	_, err := (&tp.Client{}).FetchDischarges(context.Background(), mint(t, d).String(), firstParty)
	var e *tp.Error
	if !errors.Is(err, tp.ErrNoUserCallback) || !errors.As(err, &e) || e.Step != "user" {
		t.Fatalf("error %v, want ErrNoUserCallback at step user", err)
	}
}

func TestDecideError(t *testing.T) {
	d := newDischarger(t, "aaa", func(context.Context, *tp.Request) (tp.Decision, error) {
		return tp.Decision{}, errors.New("database is down")
	})
	m := mint(t, d)
	a := do(t, "POST", tp.InitURL(d.loc), "application/json", initBody(d.ticket(t, m)))
	if a.status != 500 || a.body["error"] != "internal error" {
		t.Fatalf("answer %d %s", a.status, a.raw)
	}
	if !strings.Contains(d.logs.String(), "database is down") {
		t.Fatalf("cause not logged: %s", d.logs)
	}
}

// TestIgnore: an ignored location is not contacted and gets no discharge.
func TestIgnore(t *testing.T) {
	a := newDischarger(t, "aaa", immediate(t))
	b := newDischarger(t, "bbb", immediate(t))
	m := mint(t, a, b)
	c := &tp.Client{Ignore: []string{b.loc}}
	out, err := c.FetchDischarges(context.Background(), m.String(), firstParty)
	if err != nil {
		t.Fatal(err)
	}
	if paths, _ := b.seen(); len(paths) != 0 {
		t.Fatalf("ignored third party contacted: %q", paths)
	}
	if n := len(newDischarges(t, m, out)); n != 1 {
		t.Fatalf("%d discharges, want 1", n)
	}
	// A second pass fetches nothing: a's caveat is discharged, b's ignored.
	out2, err := c.FetchDischarges(context.Background(), out, firstParty)
	if err != nil || out2 != out {
		t.Fatalf("second pass changed the bundle (%v)", err)
	}
	if paths, _ := a.seen(); len(paths) != 1 {
		t.Fatalf("a contacted %d times, want 1", len(paths))
	}
}

// TestFirstPartyLocation: with a location, only that first party's tokens
// are permission tokens; with none, every token that is not a discharge.
func TestFirstPartyLocation(t *testing.T) {
	d := newDischarger(t, "aaa", immediate(t))
	m := mint(t, d)
	c := &tp.Client{}
	out, err := c.FetchDischarges(context.Background(), m.String(), "https://other.example/v1")
	if err != nil || out != m.String() {
		t.Fatalf("fetched for a token of another first party: %v", err)
	}
	out, err = c.FetchDischarges(context.Background(), m.String(), "")
	if err != nil {
		t.Fatal(err)
	}
	mustVerify(t, out, d)
}

// TestTrailingSlash: a location ending in "/" gets no doubled slash, on
// the client's side or in the server's poll URL.
func TestTrailingSlash(t *testing.T) {
	flows := make(chan tp.FlowID, 1)
	d := &discharger{t: t, key: caveat.NewEncryptionKey(), logs: new(fake.Buffer)}
	d.ts = httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(d.ts.Close)
	d.setup(d.ts.URL+"/aaa/v1/", func(_ context.Context, req *tp.Request) (tp.Decision, error) {
		flows <- req.Flow
		return tp.Poll(), nil
	})
	m := mint(t, d)
	sl := &noSleep{onWait: func(int) {
		if err := d.srv.Complete(context.Background(), <-flows, user42()); err != nil {
			t.Error(err)
		}
	}}
	out, err := (&tp.Client{Sleep: sl.sleep}).FetchDischarges(context.Background(), m.String(), firstParty)
	if err != nil {
		t.Fatal(err)
	}
	mustVerify(t, out, d)
	paths, _ := d.seen()
	if len(paths) != 3 || paths[0] != "/aaa/v1/.well-known/macfly/3p" ||
		!strings.HasPrefix(paths[1], "/aaa/v1/.well-known/macfly/3p/poll/") {
		t.Fatalf("requests %q", paths)
	}
}
