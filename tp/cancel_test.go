package tp_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/tp"
)

// These tests run in a synctest bubble: time is fake (the client's real
// backoff timers run instantly), and synctest.Test fails if any goroutine
// started by the test is still blocked when it ends, so they catch leaked
// pollers. HTTP goes through an in-memory transport to the server's handler,
// since loopback sockets are outside the bubble.

// handlerTransport serves requests with a handler, in the caller's goroutine.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// bubbleServer is a tp.Server at location that counts its poll requests.
func bubbleServer(t *testing.T, location string, key caveat.EncryptionKey, decide tp.DecideFunc, polls *atomic.Int32) http.Handler {
	t.Helper()
	srv, err := tp.NewServer(tp.Config{Location: location, Keys: []caveat.EncryptionKey{key}, Decide: decide,
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/poll/") {
			polls.Add(1)
		}
		srv.ServeHTTP(w, r)
	})
}

// TestCancelStopsPolling: cancelling the context ends FetchDischarges and
// its polling at once.
func TestCancelStopsPolling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const loc = "https://auth.example/aaa/v1"
		key := caveat.NewEncryptionKey()
		var polls atomic.Int32
		h := bubbleServer(t, loc, key, func(context.Context, *tp.Request) (tp.Decision, error) {
			return tp.Poll(), nil // never completed
		}, &polls)
		m := mint(t)
		if err := m.Add3P(key, loc); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		c := &tp.Client{HTTP: &http.Client{Transport: handlerTransport{h}}}
		done := make(chan error, 1)
		go func() {
			_, err := c.FetchDischarges(ctx, m.String(), firstParty)
			done <- err
		}()

		time.Sleep(10 * time.Second) // polls at 0, 1, 3 and 7 s
		synctest.Wait()
		if n := polls.Load(); n != 4 {
			t.Fatalf("%d polls in 10 s, want 4 (1 s doubling)", n)
		}
		cancel()
		synctest.Wait()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("error %v, want context.Canceled", err)
			}
		default:
			t.Fatal("FetchDischarges still running after cancel")
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if n := polls.Load(); n != 4 {
			t.Fatalf("%d polls after cancel, want none", n-4)
		}
	})
}

// TestFailureCancelsOtherFlows: when one of parallel flows fails, the others
// stop polling and FetchDischarges returns the failure.
func TestFailureCancelsOtherFlows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const slowLoc, failLoc = "https://slow.example/v1", "https://fail.example/v1"
		slowKey, failKey := caveat.NewEncryptionKey(), caveat.NewEncryptionKey()
		var polls, unused atomic.Int32
		slow := bubbleServer(t, slowLoc, slowKey, func(context.Context, *tp.Request) (tp.Decision, error) {
			return tp.Poll(), nil
		}, &polls)
		fail := bubbleServer(t, failLoc, failKey, func(context.Context, *tp.Request) (tp.Decision, error) {
			time.Sleep(5 * time.Second)
			return tp.Refuse(http.StatusForbidden, "no"), nil
		}, &unused)
		mux := http.NewServeMux()
		mux.Handle("slow.example/", slow)
		mux.Handle("fail.example/", fail)

		m := mint(t)
		if err := m.Add3P(slowKey, slowLoc); err != nil {
			t.Fatal(err)
		}
		if err := m.Add3P(failKey, failLoc); err != nil {
			t.Fatal(err)
		}
		c := &tp.Client{HTTP: &http.Client{Transport: handlerTransport{mux}}}
		start := time.Now()
		_, err := c.FetchDischarges(t.Context(), m.String(), firstParty)
		var e *tp.Error
		if !errors.As(err, &e) || e.Location != failLoc || !errors.Is(err, tp.ErrRefused) {
			t.Fatalf("error %v, want fail.example's refusal", err)
		}
		if el := time.Since(start); el != 5*time.Second {
			t.Fatalf("returned after %v, want 5 s (when the refusal came)", el)
		}
		n := polls.Load()
		if n != 3 { // at 0, 1 and 3 s
			t.Fatalf("%d polls before the failure, want 3", n)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if polls.Load() != n {
			t.Fatal("polling went on after the failure")
		}
	})
}
