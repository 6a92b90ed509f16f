// Package middleware lets any Go HTTP service require caveat tokens.
//
// # Use
//
// An Authenticator turns the bundle of a request's Authorization header
// into a Principal; a Principal says whether it may make an access. Two
// implement it: *authority.Service authenticates with the authority's
// keys, in the same process; client.Remote asks the authority's
// /v1/tokens/authenticate endpoint, caches the answer by a hash of the
// bundle, and forgets it when the token is revoked.
//
//	auth := client.NewRemote(client.RemoteConfig{URL: "https://caveat.example",
//		FeedToken: os.Getenv("CAVEAT_FEED_TOKEN")})
//	go auth.Run(ctx) // follows the revocation feed
//	mux.Handle("GET /v1/things/{id}", middleware.Require(auth, func(r *http.Request) (*flyio.Access, error) {
//		return &flyio.Access{OrgID: flyio.Ptr(org), AppID: flyio.Ptr(app), Action: resset.ActionRead}, nil
//	}, thingsHandler))
//
// Require answers 401 {"error": …} when the request has no token or an
// invalid one, and 403 {"error": …} naming the caveat that denies the access
// and the action it is missing. Handlers that need several checks (a list
// filtered item by item) call Authenticator.Principal once and
// Principal.Allow for each item, all with the context Scope returns for
// the request, so that an authenticator that reads something per request
// (the authority, a session's membership) reads it once.
//
// The package depends on neither the authority nor its store: it is the
// contract that they, client.Remote and any other authenticator meet, so
// a service can also be tested with an Authenticator of its own.
//
// # Errors
//
// A refusal is an *Error (the services' *fault.Error): code
// fault.Unauthenticated for a bundle that proves nothing, fault.Denied for
// an access it does not allow, with the caveats' refusals in Denials.
// Require answers it with its code's status. Any other error is a failure
// to check (the authority unreachable, its store down), which Require
// answers 503 without serving the request: the middleware fails closed.
package middleware

import (
	"context"
	"net/http"

	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/internal/httpjson"
)

// Authenticator verifies the bundles of requests. An implementation
// keeps this contract, which Require relies on to fail closed:
//
//   - Principal verifies header (an Authorization header value, with or
//     without its scheme, or bare tokens) and returns who presents it.
//   - A bundle that is missing, malformed, invalid, expired or revoked is
//     refused with an *Error of code fault.Unauthenticated (or an error
//     wrapping one) whose message says which. An authority's other
//     refusals may be relayed with their own codes (fault.RateLimited,
//     for instance).
//   - Any other error, and an *Error of code fault.Unavailable, means
//     that the bundle could not be checked: never a refusal, never an
//     allow.
//   - A revoked bundle is refused within a bound the implementation
//     documents (its settle window), even while it cannot learn of
//     revocations.
//   - It is safe for concurrent use; a returned Principal may be shared
//     between requests, and is not modified by its callers.
type Authenticator interface {
	Principal(ctx context.Context, header string) (Principal, error)
}

// RequestScoper is implemented by an Authenticator that keeps what it
// reads for the span of one request: the authority reads each of a
// session's memberships once per request, however many accesses the
// request clears. Scope returns the context that the request's
// Principal call and its Allow calls are to be given; what it keeps
// lives as long as that context, so a scope is never shared between
// requests. Require scopes every request; a handler that authenticates
// itself calls Scope (the function) first.
type RequestScoper interface {
	Scope(ctx context.Context) context.Context
}

// Scope returns ctx scoped to one request for auth (see RequestScoper):
// auth's Scope(ctx) when it keeps state per request, else ctx.
func Scope(auth Authenticator, ctx context.Context) context.Context {
	if rs, ok := auth.(RequestScoper); ok {
		return rs.Scope(ctx)
	}
	return ctx
}

// Principal is who presents a verified bundle: what Require hands the
// handlers it protects (FromContext).
type Principal interface {
	// Allow reports whether the bundle allows the access: nil, or an
	// *Error of code fault.Denied naming the caveat, the action and the
	// resource (its Denials are the caveats' refusals, when the caveats
	// refused); any other error means the access could not be checked.
	// Access.Time, when zero, is set to now.
	Allow(ctx context.Context, a *flyio.Access) error
	// TokenID is the permission token's id (its nonce UUID).
	TokenID() string
	// OrgID is the organization of a named token, 0 for a session.
	OrgID() uint64
	// UserID is a session's user, or the creator of a named token.
	UserID() uint64
}

// Error is the refusal of a request's token, as every Authenticator and
// Principal reports it: the services' own error type, so that a refusal
// crosses from the authority to the middleware, and to a caller outside
// this module (errors.As(err, new(*middleware.Error))), unchanged. Its
// Code says which refusal it is; Require answers it with the code's HTTP
// status and its Message.
type Error = fault.Error

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
// as it is if it is an *Error (an *httpjson.Error, inside this module),
// and as 400 otherwise.
type AccessFunc func(r *http.Request) (*flyio.Access, error)

// Require serves next only for requests whose bundle allows the access
// that access builds, with the Principal in the request's context.
func Require(auth Authenticator, access AccessFunc, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(Scope(auth, r.Context()))
		p, err := auth.Principal(r.Context(), r.Header.Get("Authorization"))
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

// WriteError answers an error of Principal or Allow: an *Error
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
