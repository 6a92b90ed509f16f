package machines_test

// Issue 4's performance check: authorized GET /v1/apps/{app}/machines/{id}
// over loopback (a real HTTP client and server on 127.0.0.1, keep-alive),
// against the same handler without authentication, in one run:
//
//	go test -run '^$' -bench BenchmarkGetMachine -benchtime 3s -count 5 ./machines
//
// The subbenchmarks: "none" (an authenticator that lets everything
// through), "local" (*authority.Service: the authority in process) and
// "remote" (client.Remote: the authority's /v1/tokens/authenticate over
// loopback, its cache warm, following the revocation feed). Each reports
// req/s; compare local and remote with none.

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caveatdev/caveat/client"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/machines"
	"github.com/caveatdev/caveat/middleware"
)

// allowAll is an Authenticator that authenticates nothing: every request
// is a principal of org that may do everything.
type allowAll struct{ org uint64 }

func (a allowAll) Principal(context.Context, string) (middleware.Principal, error) { return a, nil }
func (a allowAll) Allow(context.Context, *flyio.Access) error                      { return nil }
func (a allowAll) TokenID() string                                                 { return "" }
func (a allowAll) OrgID() uint64                                                   { return a.org }
func (a allowAll) UserID() uint64                                                  { return 0 }

func BenchmarkGetMachine(b *testing.B) {
	db, _ := sqliteOnly(b)
	e := newEnv(b, db)
	m := e.create("workers", map[string]any{})
	e.settle()
	e.get(m.ID) // records the end of the start

	// The authority's own API, for Remote.
	mux := http.NewServeMux()
	e.auth.Register(mux)
	authority := httptest.NewServer(httpjson.Routes(mux))
	defer authority.Close()
	// Both caches are served only while their revocation feed is followed.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.auth.Run(ctx)
	remote := client.NewRemote(client.RemoteConfig{URL: authority.URL, FeedToken: e.deploy})
	go remote.Run(ctx)
	if err := remote.Poll(ctx); err != nil {
		b.Fatal(err)
	}

	serve := func(auth middleware.Authenticator) *httptest.Server {
		svc, err := machines.New(machines.Config{Store: db, Auth: auth, Now: e.clk.now, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		return httptest.NewServer(svc.Handler())
	}
	for _, tc := range []struct {
		name string
		auth middleware.Authenticator
	}{
		{"none", allowAll{org: e.org.ID}},
		{"local", e.auth},
		{"remote", remote},
	} {
		srv := serve(tc.auth)
		url := srv.URL + "/v1/apps/workers/machines/" + m.ID
		b.Run(tc.name, func(b *testing.B) {
			tr := &http.Transport{MaxIdleConnsPerHost: 256}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr}
			get := func() error {
				req, _ := http.NewRequest("GET", url, nil)
				req.Header.Set("Authorization", e.deploy)
				resp, err := hc.Do(req)
				if err != nil {
					return err
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("GET: %d", resp.StatusCode)
				}
				return nil
			}
			if err := get(); err != nil { // warms the connection and the caches
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := get(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
		srv.Close()
	}
}
