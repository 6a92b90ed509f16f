// Package middleware lets any Go HTTP service require caveat tokens.
//
// # Use
//
// An Authenticator turns the bundle of a request's Authorization header
// into a Principal; a Principal says whether it may make an access. Local
// authenticates with the authority's keys, in the same process; Remote asks
// the authority's /v1/tokens/authenticate endpoint, caches the answer by a
// hash of the bundle, and forgets it when the token is revoked.
//
//	auth := middleware.NewRemote(middleware.RemoteConfig{URL: "https://caveat.example",
//		FeedToken: os.Getenv("CAVEAT_FEED_TOKEN")})
//	go auth.Run(ctx) // follows the revocation feed
//	mux.Handle("GET /v1/things/{id}", middleware.Require(auth, func(r *http.Request) (*flyio.Access, error) {
//		return &flyio.Access{OrgID: flyio.Ptr(org), AppID: flyio.Ptr(app), Action: resset.ActionRead}, nil
//	}, thingsHandler))
//
// Require answers 401 {"error": …} when the request has no token or an
// invalid one, and 403 {"error": …} naming the caveat that denies the access
// and the action it is missing. Handlers that need several checks (a list
// filtered item by item) call Authenticate once and Allow for each item.
//
// # Revocation and the feed token
//
// Remote learns of revocations from the authority's revocation feed (GET
// /v1/tokens/revocations), which needs a valid token of any kind: give it
// one of its own in RemoteConfig.FeedToken, a named token created for the
// purpose ("caveat tokens create readonly --name revocation-feed"), which
// shows in "caveat tokens list" with its last use and can be revoked and
// replaced like any other. It is a token of its own rather than one of the
// bundles Remote has seen, so that Remote never uses a caller's credential
// for its own purposes, and a revoked or expired caller's bundle cannot
// stop the feed.
//
// A cached verification is served only while Run has read the feed to its
// end within RemoteConfig.SettleWindow (1 s). Past it — no FeedToken, the
// feed token refused, the authority unreachable — every request is
// authenticated by the authority afresh, and fails (Require answers 503)
// when that cannot be done: a revoked token is never allowed from the
// cache for longer than the window.
//
// # Errors
//
// Authenticate fails with a *fault.Error of code fault.Unauthenticated for
// a bad token (Remote relays the authority's other refusals with their
// codes too), and with any other error when the authority cannot be asked
// (Require answers those 503). Allow fails with a
// *fault.Error of code fault.Denied, whose Denials are the caveats'
// refusals when the caveats refused.
package middleware

import (
	"context"
	"net/http"

	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/internal/httpjson"
)

// Authenticator verifies bundles.
type Authenticator interface {
	// Authenticate verifies the bundle (an Authorization header value, or
	// bare tokens) and returns who presents it. A bundle that is missing,
	// malformed, invalid, expired or revoked is a *fault.Error of code
	// fault.Unauthenticated saying which; any other error means the check
	// could not be made.
	Authenticate(ctx context.Context, header string) (Principal, error)
}

// Principal is a verified bundle.
type Principal interface {
	// Allow reports whether the bundle allows the access: nil, or a
	// *fault.Error of code fault.Denied naming the caveat, the action and
	// the resource.
	// Access.Time, when zero, is set to now.
	Allow(ctx context.Context, a *flyio.Access) error
	// TokenID is the permission token's id (its nonce UUID).
	TokenID() string
	// OrgID is the organization of a named token, 0 for a session.
	OrgID() uint64
	// UserID is a session's user, or the creator of a named token.
	UserID() uint64
}

type principalKey struct{}

// FromContext returns the Principal that Require put in the request's
// context, or nil.
func FromContext(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}

// WithPrincipal returns ctx carrying p, for handlers that authenticate
// themselves and call code that uses FromContext.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// AccessFunc builds the access a request attempts. An error is answered
// as it is if it is a *fault.Error or an *httpjson.Error, and as 400
// otherwise.
type AccessFunc func(r *http.Request) (*flyio.Access, error)

// Require serves next only for requests whose bundle allows the access
// that access builds, with the Principal in the request's context.
func Require(auth Authenticator, access AccessFunc, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := auth.Authenticate(r.Context(), r.Header.Get("Authorization"))
		if err != nil {
			WriteError(w, r, err)
			return
		}
		a, err := access(r)
		if err != nil {
			if _, _, ok := httpjson.StatusOf(err); !ok {
				err = httpjson.Errorf(http.StatusBadRequest, "%v", err)
			}
			WriteError(w, r, err)
			return
		}
		if err := p.Allow(r.Context(), a); err != nil {
			WriteError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

// WriteError answers an error of Authenticate or Allow: a *fault.Error
// with its code's status (a refusal's message shown), an *httpjson.Error
// relayed from the authority with its own, and anything else 503
// "authority unavailable" (the cause is not shown to the client).
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	if status, msg, ok := httpjson.StatusOf(err); ok {
		httpjson.Write(w, status, map[string]string{"error": msg})
		return
	}
	httpjson.Write(w, http.StatusServiceUnavailable, map[string]string{"error": "cannot check the token now: authority unavailable"})
}
