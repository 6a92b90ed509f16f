package middleware_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/internal/testenv"
	"github.com/caveatdev/caveat/middleware"
)

// stub is an Authenticator whose answers the test sets: err from
// Principal, allowErr from Allow.
type stub struct{ err, allowErr error }

func (s stub) Principal(context.Context, string) (middleware.Principal, error) {
	if s.err != nil {
		return nil, s.err
	}
	return s, nil
}
func (s stub) Allow(context.Context, *flyio.Access) error { return s.allowErr }
func (s stub) TokenID() string                            { return "t1" }
func (s stub) OrgID() uint64                              { return 1 }
func (s stub) UserID() uint64                             { return 2 }

// TestRequireContract: Require serves a request only when the
// authenticator and the principal both say yes; an *Error (wrapped or not)
// is answered with its code's status and its message, anything else 503 with the
// cause kept from the client, so that an authenticator that cannot check
// never lets a request through.
func TestRequireContract(t *testing.T) {
	secret := errors.New("dial tcp 10.0.0.7:443: connection refused")
	for _, tc := range []struct {
		name       string
		auth       stub
		accessErr  error
		wantStatus int
		want       string
	}{
		{"allowed", stub{}, nil, 200, "t1"},
		{"refused", stub{err: &middleware.Error{Code: fault.Unauthenticated, Message: "token revoked"}}, nil, 401, "token revoked"},
		{"refused, wrapped", stub{err: fmt.Errorf("asking: %w", &middleware.Error{Code: fault.RateLimited, Message: "slow down"})}, nil, 429, "slow down"},
		{"cannot check", stub{err: secret}, nil, 503, "authority unavailable"},
		{"unavailable", stub{err: &middleware.Error{Code: fault.Unavailable, Message: "cannot check the token now: the registry is down", Err: secret}}, nil, 503, "registry is down"},
		{"denied", stub{allowErr: &middleware.Error{Code: fault.Denied, Message: "caveat 1 (Apps): unauthorized"}}, nil, 403, "caveat 1 (Apps)"},
		{"allow cannot check", stub{allowErr: secret}, nil, 503, "authority unavailable"},
		{"access error", stub{}, errors.New("bad machine id"), 400, "bad machine id"},
		{"access refusal", stub{}, &middleware.Error{Code: fault.NotFound, Message: "no such thing"}, 404, "no such thing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := middleware.Require(tc.auth, func(*http.Request) (*flyio.Access, error) {
				if tc.accessErr != nil {
					return nil, tc.accessErr
				}
				return &flyio.Access{OrgID: flyio.Ptr[uint64](1)}, nil
			}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte(middleware.FromContext(r.Context()).TokenID()))
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			body := rec.Body.String()
			if rec.Code != tc.wantStatus || !strings.Contains(body, tc.want) || strings.Contains(body, "10.0.0.7") {
				t.Errorf("%d %s, want %d with %q", rec.Code, body, tc.wantStatus, tc.want)
			}
			if rec.Code != 200 {
				var e struct{ Error string }
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
					t.Errorf("refusal %s is not {\"error\": …}", body)
				}
			}
		})
	}
}

// TestDependencies: the middleware is a peer of the authority, not a layer
// above it: it imports neither the authority nor its store, so that both
// the authority and client.Remote can implement its Authenticator. The
// client, which services outside this module import to reach the
// authority, drags in neither either: the access rule they share lives here.
func TestDependencies(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		testenv.Missing(t, "the go command is not on PATH")
	}
	for pkg, forbidden := range map[string][]string{
		".":         {"authority", "store", "client"},
		"../client": {"authority", "store", "server"},
	} {
		out, err := exec.Command(goCmd, "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, f := range forbidden {
				if dep == "github.com/caveatdev/caveat/"+f {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}

// scoping is an Authenticator that keeps state per request: each Scope is
// a new *int, which Principal and Allow must both be given.
type scoping struct {
	scopes, mismatches int
}

type scopeKey struct{}

func (s *scoping) Scope(ctx context.Context) context.Context {
	s.scopes++
	return context.WithValue(ctx, scopeKey{}, new(int))
}

func (s *scoping) Principal(ctx context.Context, _ string) (middleware.Principal, error) {
	n, _ := ctx.Value(scopeKey{}).(*int)
	if n == nil {
		s.mismatches++
		return nil, errors.New("Principal called outside a request scope")
	}
	*n++
	return scopedPrincipal{s: s, n: n}, nil
}

type scopedPrincipal struct {
	stub
	s *scoping
	n *int
}

func (p scopedPrincipal) Allow(ctx context.Context, _ *flyio.Access) error {
	if n, _ := ctx.Value(scopeKey{}).(*int); n != p.n {
		p.s.mismatches++
		return errors.New("Allow called in another scope than Principal")
	}
	return nil
}

// TestRequireScopesEachRequest: Require gives an Authenticator that keeps
// state per request (middleware.RequestScoper) a fresh scope for each
// request, and passes it to Principal, Allow and the handler.
func TestRequireScopesEachRequest(t *testing.T) {
	auth := &scoping{}
	h := middleware.Require(auth, func(*http.Request) (*flyio.Access, error) {
		return &flyio.Access{OrgID: flyio.Ptr[uint64](1)}, nil
	}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := middleware.FromContext(r.Context())
		if err := p.Allow(r.Context(), &flyio.Access{}); err != nil {
			t.Error(err)
		}
	}))
	for range 3 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code != 200 {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
	if auth.scopes != 3 || auth.mismatches != 0 {
		t.Errorf("3 requests: %d scopes, %d calls outside their request's scope; want 3 and 0", auth.scopes, auth.mismatches)
	}
}
