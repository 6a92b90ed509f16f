package storetest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/caveatdev/caveat/store"
)

// RunWebLogins runs the conformance tests of [store.WebLogins] against the
// stores newStore makes: a new, empty one for each call. The in-memory
// implementation and every shared backend run it.
func RunWebLogins(t *testing.T, newStore func(t *testing.T) store.WebLogins) {
	runEach(t, newStore, []namedTest[store.WebLogins]{
		{"Flow", testWebLoginFlow},
		{"Expiry", testWebLoginExpiry},
		{"Bound", testWebLoginBound},
		{"Invalid", testWebLoginInvalid},
		{"ConcurrentCollect", testWebLoginConcurrentCollect},
		{"ConcurrentStart", testWebLoginConcurrentStart},
	})
}

// flowKey is a distinct key for each label.
func flowKey(label string) store.FlowKey { return store.FlowKey(sha256.Sum256([]byte(label))) }

func newWebLogin(name string, started time.Time, life time.Duration) store.WebLogin {
	return store.WebLogin{PollKey: flowKey(name + " poll"), UserKey: flowKey(name + " user"), Addr: "192.0.2.7",
		StartedAt: started, ExpiresAt: started.Add(life)}
}

func testWebLoginFlow(t *testing.T, s store.WebLogins) {
	w := newWebLogin("a", t0, 15*time.Minute)
	must(t, s.StartWebLogin(ctx(t), w, 10, t0))
	want := w
	want.StartedAt, want.ExpiresAt = stored(w.StartedAt), stored(w.ExpiresAt)

	got, err := s.WebLoginByUserKey(ctx(t), w.UserKey, at(time.Minute))
	must(t, err)
	wantEqual(t, "by user key", got, want)
	_, err = s.WebLoginByUserKey(ctx(t), w.PollKey, at(time.Minute))
	wantErr(t, err, store.ErrNotFound) // the poll key is not a user key

	// Pending: collected as pending, and kept.
	for range 2 {
		got, err = s.CollectWebLogin(ctx(t), w.PollKey, at(time.Minute))
		must(t, err)
		wantEqual(t, "pending collect", got, want)
	}
	_, err = s.CollectWebLogin(ctx(t), w.UserKey, at(time.Minute))
	wantErr(t, err, store.ErrNotFound) // the user key does not poll

	wantErr(t, s.CompleteWebLogin(ctx(t), w.PollKey, 42, at(time.Minute)), store.ErrNotFound)
	must(t, s.CompleteWebLogin(ctx(t), w.UserKey, 42, at(2*time.Minute)))
	wantErr(t, s.CompleteWebLogin(ctx(t), w.UserKey, 43, at(2*time.Minute)), store.ErrConflict)
	got, err = s.WebLoginByUserKey(ctx(t), w.UserKey, at(2*time.Minute))
	must(t, err)
	if got.UserID != 42 {
		t.Fatalf("completed login has user %d, want 42", got.UserID)
	}

	// Completed: collected once.
	got, err = s.CollectWebLogin(ctx(t), w.PollKey, at(3*time.Minute))
	must(t, err)
	want.UserID = 42
	wantEqual(t, "completed collect", got, want)
	_, err = s.CollectWebLogin(ctx(t), w.PollKey, at(3*time.Minute))
	wantErr(t, err, store.ErrNotFound)
	_, err = s.WebLoginByUserKey(ctx(t), w.UserKey, at(3*time.Minute))
	wantErr(t, err, store.ErrNotFound)

	// Keys of a login, live or not, are not reused.
	b := newWebLogin("b", t0, time.Minute)
	must(t, s.StartWebLogin(ctx(t), b, 10, t0))
	again := newWebLogin("c", t0, time.Minute)
	again.UserKey = b.UserKey
	wantErr(t, s.StartWebLogin(ctx(t), again, 10, t0), store.ErrExists)
	again = newWebLogin("c", t0, time.Minute)
	again.PollKey = b.PollKey
	wantErr(t, s.StartWebLogin(ctx(t), again, 10, t0), store.ErrExists)
}

func testWebLoginExpiry(t *testing.T, s store.WebLogins) {
	w := newWebLogin("a", t0, time.Minute)
	must(t, s.StartWebLogin(ctx(t), w, 10, t0))
	before, end := at(time.Minute-time.Microsecond), at(time.Minute)
	if _, err := s.WebLoginByUserKey(ctx(t), w.UserKey, before); err != nil {
		t.Fatalf("a microsecond before expiry: %v", err)
	}
	_, err := s.WebLoginByUserKey(ctx(t), w.UserKey, end)
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.CompleteWebLogin(ctx(t), w.UserKey, 42, end), store.ErrNotFound)
	_, err = s.CollectWebLogin(ctx(t), w.PollKey, end)
	wantErr(t, err, store.ErrNotFound)

	// A login completed before its expiry is not collected after it.
	c := newWebLogin("c", t0, time.Minute)
	must(t, s.StartWebLogin(ctx(t), c, 10, t0))
	must(t, s.CompleteWebLogin(ctx(t), c.UserKey, 42, before))
	_, err = s.CollectWebLogin(ctx(t), c.PollKey, end)
	wantErr(t, err, store.ErrNotFound)

	// DeleteExpiredWebLogins: at or before.
	for i, life := range []time.Duration{2 * time.Minute, 3 * time.Minute, 4 * time.Minute} {
		must(t, s.StartWebLogin(ctx(t), newWebLogin(fmt.Sprint("d", i), t0, life), 10, t0))
	}
	n, err := s.DeleteExpiredWebLogins(ctx(t), at(3*time.Minute))
	must(t, err)
	// The two expired at a minute (if the store still held them) and
	// those of two and three minutes.
	if n < 2 || n > 4 {
		t.Fatalf("deleted %d logins expired by 3m, want 2 to 4", n)
	}
	if _, err := s.WebLoginByUserKey(ctx(t), newWebLogin("d2", t0, 0).UserKey, at(3*time.Minute)); err != nil {
		t.Fatalf("the login expiring at 4m: %v", err)
	}
	n, err = s.DeleteExpiredWebLogins(ctx(t), at(3*time.Minute))
	must(t, err)
	if n != 0 {
		t.Fatalf("deleted %d logins again", n)
	}
}

func testWebLoginBound(t *testing.T, s store.WebLogins) {
	for i := range 3 {
		must(t, s.StartWebLogin(ctx(t), newWebLogin(fmt.Sprint("a", i), at(time.Duration(i)*time.Second), time.Minute), 3,
			at(time.Duration(i)*time.Second)))
	}
	now := at(10 * time.Second)
	for i := range 5 {
		err := s.StartWebLogin(ctx(t), newWebLogin(fmt.Sprint("b", i), now, time.Minute), 3, now)
		var fe *store.FullError
		if !errors.Is(err, store.ErrFull) || !errors.Is(err, store.ErrConflict) || !errors.As(err, &fe) ||
			fe.Max != 3 || fe.RetryAfter > 50*time.Second || fe.RetryAfter <= 50*time.Second-time.Microsecond {
			// Stored times lose the nanoseconds of t0: within a
			// microsecond.
			t.Fatalf("start on a full store: %v (%+v), want a FullError retrying in 50s", err, fe)
		}
	}
	for i := range 3 {
		if _, err := s.WebLoginByUserKey(ctx(t), newWebLogin(fmt.Sprint("a", i), t0, 0).UserKey, now); err != nil {
			t.Fatalf("login %d dropped by a full store: %v", i, err)
		}
	}
	// A larger bound has room.
	must(t, s.StartWebLogin(ctx(t), newWebLogin("c", now, time.Minute), 4, now))
	// Collecting a completed login makes room; so does an expiry.
	a0 := newWebLogin("a0", t0, 0)
	must(t, s.CompleteWebLogin(ctx(t), a0.UserKey, 7, now))
	_, err := s.CollectWebLogin(ctx(t), a0.PollKey, now)
	must(t, err)
	must(t, s.StartWebLogin(ctx(t), newWebLogin("d", now, time.Minute), 4, now))
	wantErr(t, s.StartWebLogin(ctx(t), newWebLogin("e", now, time.Minute), 4, now), store.ErrFull)
	later := at(61 * time.Second) // a1 has expired
	must(t, s.StartWebLogin(ctx(t), newWebLogin("e", later, time.Minute), 4, later))
}

func testWebLoginInvalid(t *testing.T, s store.WebLogins) {
	good := newWebLogin("a", t0, time.Minute)
	for name, w := range map[string]store.WebLogin{
		"no poll key":   func() store.WebLogin { w := good; w.PollKey = store.FlowKey{}; return w }(),
		"no user key":   func() store.WebLogin { w := good; w.UserKey = store.FlowKey{}; return w }(),
		"same keys":     func() store.WebLogin { w := good; w.UserKey = w.PollKey; return w }(),
		"no address":    func() store.WebLogin { w := good; w.Addr = ""; return w }(),
		"no start":      func() store.WebLogin { w := good; w.StartedAt = time.Time{}; return w }(),
		"expires first": func() store.WebLogin { w := good; w.ExpiresAt = w.StartedAt; return w }(),
		"completed":     func() store.WebLogin { w := good; w.UserID = 1; return w }(),
	} {
		if err := s.StartWebLogin(ctx(t), w, 10, t0); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	wantErr(t, s.StartWebLogin(ctx(t), good, 0, t0), store.ErrInvalid)
	must(t, s.StartWebLogin(ctx(t), good, 1, t0))
	wantErr(t, s.CompleteWebLogin(ctx(t), good.UserKey, 0, t0), store.ErrInvalid)
}

// testWebLoginConcurrentCollect: a completed login is handed out once, and
// completed once, however many callers race.
func testWebLoginConcurrentCollect(t *testing.T, s store.WebLogins) {
	w := newWebLogin("a", t0, time.Minute)
	must(t, s.StartWebLogin(ctx(t), w, 10, t0))
	errs := parallel(func(i int) error { return s.CompleteWebLogin(ctx(t), w.UserKey, uint64(i+1), t0) })
	wantWins(t, "complete", errs, store.ErrConflict)
	var mu sync.Mutex
	var users []uint64
	errs = parallel(func(int) error {
		got, err := s.CollectWebLogin(ctx(t), w.PollKey, t0)
		if err == nil {
			mu.Lock()
			users = append(users, got.UserID)
			mu.Unlock()
		}
		return err
	})
	wantWins(t, "collect", errs, store.ErrNotFound)
	if len(users) != 1 || users[0] == 0 {
		t.Fatalf("collected users %v, want one", users)
	}
}

// testWebLoginConcurrentStart: racing starts fill a bound exactly.
func testWebLoginConcurrentStart(t *testing.T, s store.WebLogins) {
	errs := parallel(func(i int) error {
		return s.StartWebLogin(ctx(t), newWebLogin(fmt.Sprint("a", i), t0, time.Minute), 5, t0)
	})
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrFull):
			t.Fatalf("racing start: %v", err)
		}
	}
	if ok != 5 {
		t.Fatalf("%d of %d racing starts succeeded under a bound of 5", ok, len(errs))
	}
}

// wantWins fails unless exactly one of errs is nil and the others wrap
// lost.
func wantWins(t *testing.T, what string, errs []error, lost error) {
	t.Helper()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, lost):
			t.Fatalf("%s: %v, want nil or %q", what, err, lost)
		}
	}
	if wins != 1 {
		t.Fatalf("%s: %d of %d racing calls won, want 1", what, wins, len(errs))
	}
}
