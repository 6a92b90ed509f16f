package authority

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/auth"
	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/internal/tokencache"
	"github.com/caveatdev/caveat/keyring"
	"github.com/caveatdev/caveat/middleware"
	"github.com/caveatdev/caveat/store"
)

// Store is what the authority keeps in the database.
type Store interface {
	store.Users
	store.Organizations
	store.Sessions
	store.RootKeys
	store.Apps
	store.Tokens
	store.Invitations
	store.Members
}

// Config configures a Service.
type Config struct {
	Store   Store
	Keyring *keyring.Keyring
	// Location is where permission tokens are used: the public URL + "/v1".
	Location string
	// LoginLocation is the login discharger: the public URL + "/aaa/v1".
	LoginLocation string
	Now           func() time.Time
	Logger        *slog.Logger

	// CacheSize bounds the verified bundles kept (DefaultCacheSize when 0;
	// negative turns the cache off).
	CacheSize int
	// CacheBytes bounds the memory the verified bundles kept may hold
	// (DefaultCacheBytes when 0), and separately that of the remembered
	// refusals of revoked tokens: see cache.go.
	CacheBytes int64
	// CacheTTL bounds how long a named token's verification is reused
	// (DefaultCacheTTL when 0). Revocations evict it at once on this
	// replica and, through Run, within RevocationPoll on the others.
	CacheTTL time.Duration
	// SessionCacheTTL bounds how long a session's verification is reused
	// (DefaultSessionCacheTTL when 0): logouts are not in the revocation
	// feed, so this is how soon a logout reaches every replica.
	SessionCacheTTL time.Duration
	// RevocationSettle is how long after its last confirmed read of the
	// revocation feed a cached verification is still served
	// (DefaultRevocationSettle when 0): the most a revocation through
	// another replica can take to be honoured here, even while the feed
	// fails. Past it, bundles are verified against the store, and a store
	// failure is a 503. Without Run, nothing cached is served.
	RevocationSettle time.Duration
	// RevocationPoll is how often Run reads the revocation feed (when 0,
	// DefaultRevocationPoll or half of RevocationSettle, whichever is
	// shorter); it must be shorter than RevocationSettle. With a store that
	// notifies (PostgreSQL), Run also reads it as soon as a revocation
	// commits.
	RevocationPoll time.Duration
}

// Cache defaults.
const (
	DefaultCacheSize        = 10_000
	DefaultCacheBytes       = 64 << 20
	DefaultCacheTTL         = time.Minute
	DefaultSessionCacheTTL  = time.Second
	DefaultRevocationSettle = time.Second
	DefaultRevocationPoll   = 500 * time.Millisecond
)

// Service is the token authority.
type Service struct {
	cfg     Config
	trusted caveat.TrustedThirdParties

	// touched holds the named tokens used within touchEvery, to throttle
	// the registry's last-used writes.
	touched *tokencache.Cache[struct{}]

	// cache holds verified bundles; nil when off.
	cache *tokencache.Cache[*Principal]
	// revoked remembers refusals of revoked tokens, which are final, so
	// that a revoked token replayed at a high rate costs no database read.
	revoked *tokencache.Cache[error]
	// feed is when Run last confirmed the revocation feed current.
	feed tokencache.Feed

	// branchSets keeps tokens' revoked branches between verifications.
	branchSets branchSetCache
}

// touchEvery throttles the registry's last-used writes per token.
const touchEvery = time.Minute

// New returns the authority.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Keyring == nil || cfg.Location == "" || cfg.LoginLocation == "" {
		return nil, errors.New("authority: Store, Keyring, Location and LoginLocation are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.SessionCacheTTL <= 0 {
		cfg.SessionCacheTTL = DefaultSessionCacheTTL
	}
	if cfg.CacheBytes <= 0 {
		cfg.CacheBytes = DefaultCacheBytes
	}
	if cfg.RevocationSettle <= 0 {
		cfg.RevocationSettle = DefaultRevocationSettle
	}
	if cfg.RevocationPoll <= 0 {
		cfg.RevocationPoll = min(DefaultRevocationPoll, cfg.RevocationSettle/2)
	}
	if cfg.RevocationPoll >= cfg.RevocationSettle {
		return nil, fmt.Errorf("authority: RevocationPoll %s must be shorter than RevocationSettle %s, or no cached verification could ever be served",
			cfg.RevocationPoll, cfg.RevocationSettle)
	}
	s := &Service{
		cfg:     cfg,
		trusted: caveat.TrustedThirdParties{cfg.LoginLocation: {cfg.Keyring.LoginTicketKey()}},
		touched: tokencache.New[struct{}](tokencache.Limits{Entries: maxTouched, Bytes: maxTouched * (tokencache.EntryOverhead + 36)}),
	}
	if cfg.CacheSize > 0 {
		s.cache = tokencache.New[*Principal](cfg.cacheLimits())
		s.revoked = tokencache.New[error](cfg.cacheLimits())
	}
	return s, nil
}

// Principal is who presents a verified bundle.
type Principal struct {
	// UserID is the logged-in user of a session token, or the user who
	// created a named token.
	UserID uint64
	// SessionID is set for a session token.
	SessionID string
	// Token is the registry record of a named token; nil for a session.
	Token *store.Token
	// OrgID is the organization whose key minted a named token; 0 for a
	// session, which is not tied to one organization.
	OrgID uint64
	// Caveats are the verified caveats, discharges' included.
	Caveats caveat.CaveatSet
	// Attenuations are the caveats of a session token that its holder
	// added after the authority minted it, in order (third-party caveats
	// included): what the session gave up, which every token it mints
	// carries. Nil for a named token, which does not mint.
	Attenuations caveat.CaveatSet
	// Expires is the effective expiry (zero for none): the earliest end of
	// a ValidityWindow over the token and its discharges.
	Expires time.Time
	// Branch is the branch a named token is (the binding id of its final
	// tail): what it revokes when it revokes itself. Zero for a session.
	Branch store.BranchID

	// permissionToken is the verified permission token in base64 (its
	// text without the fm2_ prefix), which the judging endpoints return;
	// empty when no bundle was verified (a session credential).
	permissionToken string
}

// IsSession reports whether the principal is a logged-in user's session.
func (p *Principal) IsSession() bool { return p.SessionID != "" }

// TokenID is the nonce UUID of the verified permission token.
func (p *Principal) TokenID() string {
	if p.Token != nil {
		return p.Token.ID
	}
	return p.SessionID
}

// errRevoked marks the refusal of a revoked token.
var errRevoked = errors.New("token revoked")

// unauthenticated is the refusal of a bundle, naming why.
func unauthenticated(format string, args ...any) error {
	return fault.Errorf(fault.Unauthenticated, format, args...)
}

// Authenticate verifies a bundle (an Authorization header value or bare
// tokens) for this authority's location: signatures, discharges from the
// trusted login service, the key's state, and revocation. Failures are
// Unauthenticated *fault.Error values that say why, or an Unavailable one
// when the store cannot be read to check it.
//
// Verified bundles are cached (see Config.CacheTTL), and served only while
// Run keeps the revocation feed confirmed (Config.RevocationSettle); the
// returned Principal may be shared and must not be modified.
func (s *Service) Authenticate(ctx context.Context, header string) (*Principal, error) {
	if header == "" {
		return nil, unauthenticated("no token: send Authorization: FlyV1 fm2_…")
	}
	if s.cache == nil {
		return s.verifyFresh(ctx, header)
	}
	now := s.cfg.Now()
	k := tokencache.KeyOf(header)
	// A revocation is final: its remembered refusal holds even while the
	// feed is not known to be current.
	if err, ok := s.revoked.Get(k, now); ok {
		return nil, err
	}
	if s.feed.Current(now, s.cfg.RevocationSettle) {
		if p, ok := s.cache.Get(k, now); ok {
			if p.Token != nil {
				s.touch(ctx, p.Token.ID, now)
			}
			return p, nil
		}
	}
	gen := s.cache.Generation()
	p, err := s.verifyFresh(ctx, header)
	if errors.Is(err, errRevoked) {
		s.revoked.Put(k, tokencache.Item[error]{Value: err, Size: revokedOverhead + len(err.Error()), Expires: now.Add(s.cfg.CacheTTL)},
			now, s.revoked.Generation())
	}
	if err != nil {
		return nil, err
	}
	until := now.Add(s.cfg.CacheTTL)
	if p.IsSession() {
		until = now.Add(s.cfg.SessionCacheTTL)
	}
	if !p.Expires.IsZero() && p.Expires.Before(until) {
		until = p.Expires // at not_after it is verified again, and expires just after
	}
	s.cache.Put(k, tokencache.Item[*Principal]{Token: p.TokenID(), Value: p, Size: p.size(), Expires: until}, now, gen)
	return p, nil
}

func (s *Service) verifyBundle(ctx context.Context, header string) (*Principal, error) {
	b, err := caveat.ParseBundle(header)
	if err != nil {
		return nil, unauthenticated("malformed token: %v", err)
	}
	// Each permission token's registry record is read before its chain is
	// walked, for its revoked branches, and reused below.
	reg := s.registryReads(ctx)
	v, err := b.VerifyWith(s.cfg.Location, s.cfg.Keyring.KeyFunc(ctx), s.trusted, &caveat.VerifyOptions{RevokedBranches: reg.revokedBranches})
	var keyOrg uint64
	if err == nil {
		keyOrg, err = s.keyOrg(ctx, v.KID)
	}
	if err != nil {
		if refusal := reg.refusal(err); refusal != nil {
			return nil, refusal
		}
		if !errors.Is(err, caveat.ErrInvalid) && !errors.Is(err, caveat.ErrMalformed) &&
			!errors.Is(err, caveat.ErrNoPermissionToken) && !errors.Is(err, caveat.ErrProof) {
			return nil, fmt.Errorf("verify: %w", err) // the store failed
		}
		return nil, unauthenticated("invalid token: %v", err)
	}
	i, cs := v.Token, v.Caveats
	m := &b.Tokens[i]
	id := m.Nonce.UUID().String()
	// A copy: a cached principal must not keep the whole header alive.
	permission := strings.Clone(strings.TrimPrefix(m.String(), "fm2_"))
	now := s.cfg.Now()
	// An expired token is not authenticated (401, so that a client knows
	// to renew), rather than denied by its ValidityWindow (403).
	e := b.Expiry(i)
	if !e.Never() && now.After(e.At) {
		what := "token"
		if e.Token != i {
			what = "its discharge from " + b.Tokens[e.Token].Location
		}
		return nil, unauthenticated("%s expired at %s (ValidityWindow)", what, e.At.UTC().Format(time.RFC3339))
	}
	if s.cfg.Keyring.IsSessionKID(m.Nonce.KID) {
		p, err := s.sessionPrincipal(ctx, id, cs, now)
		if p != nil {
			p.Expires, p.permissionToken = e.At, permission
			if len(m.Caveats) > keyring.SessionMintedCaveats {
				p.Attenuations = m.Caveats[keyring.SessionMintedCaveats:]
			}
		}
		return p, err
	}
	orgID := keyOrg
	t, err := reg.record(id)
	if err != nil {
		return nil, err
	}
	if t.Revoked() {
		return nil, &fault.Error{Code: fault.Unauthenticated, Err: errRevoked,
			Message: fmt.Sprintf("token %s was revoked at %s", id, t.RevokedAt.UTC().Format(time.RFC3339))}
	}
	if t.OrgID != orgID {
		return nil, unauthenticated("token %s is not signed by its organization's key", id)
	}
	s.touch(ctx, id, now)
	return &Principal{UserID: t.CreatedBy, Token: &t, OrgID: t.OrgID, Caveats: cs, Expires: e.At,
		Branch: store.BranchID(caveat.BindingID(m)), permissionToken: permission}, nil
}

// keyOrg is the organization of the key kid that verified a token (0 for
// the session key): the keyring has it cached from the verification.
func (s *Service) keyOrg(ctx context.Context, kid []byte) (uint64, error) {
	_, org, err := s.cfg.Keyring.Lookup(ctx, kid)
	if err != nil {
		return 0, fmt.Errorf("key %x: %w", kid, err)
	}
	return org, nil
}

func (s *Service) sessionPrincipal(ctx context.Context, id string, cs caveat.CaveatSet, now time.Time) (*Principal, error) {
	sess, err := s.cfg.Store.GetSession(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, unauthenticated("unknown session")
	}
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	switch {
	case !sess.RevokedAt.IsZero():
		return nil, unauthenticated("session ended (logged out); log in again")
	case !sess.Active(now):
		return nil, unauthenticated("session expired; log in again")
	}
	// The user comes from the login service's attestation, which Verify
	// returns only from a trusted discharge; it must be the session's.
	var uid uint64
	for _, c := range cs {
		if c.Type != auth.TypeFlyioUserID {
			continue
		}
		v, err := c.Decode()
		if err != nil {
			return nil, unauthenticated("invalid token: %v", err)
		}
		u := uint64(*v.(*auth.FlyioUserID))
		if uid != 0 && u != uid {
			return nil, unauthenticated("invalid token: conflicting user attestations")
		}
		uid = u
	}
	if uid == 0 {
		return nil, unauthenticated("session token without its login discharge")
	}
	if uid != sess.UserID {
		return nil, unauthenticated("invalid token: the login discharge is for another user")
	}
	return &Principal{UserID: uid, SessionID: id, Caveats: cs}, nil
}

// Authorize authenticates the bundle and clears the access against its
// caveats. A named token must also belong to the access's organization; a
// session's user must be a member of it, in a role that may do the access
// (spec §6.5: admin-only features need an admin). A refusal is a Denied
// *fault.Error naming the caveat, the action and the resource, whose
// Denials are the caveats' refusals when the caveats refused.
func (s *Service) Authorize(ctx context.Context, header string, a *flyio.Access) (*Principal, error) {
	p, err := s.Authenticate(ctx, header)
	if err != nil {
		return nil, err
	}
	if err := s.Allow(ctx, p, a); err != nil {
		return p, err
	}
	return p, nil
}

// Allow clears an access for an authenticated principal (see Authorize).
func (s *Service) Allow(ctx context.Context, p *Principal, a *flyio.Access) error {
	_, err := s.allowRole(ctx, p, a)
	return err
}

// allowRole is Allow, also returning the role it read: a session's role
// in the access's organization (empty when no role was read), so that an
// operation with a rule of its own about roles (org tokens, revoking
// another's token) needs no second read of the membership.
func (s *Service) allowRole(ctx context.Context, p *Principal, a *flyio.Access) (store.Role, error) {
	if a.Time.IsZero() {
		a.Time = s.cfg.Now()
	}
	var role store.Role
	err := middleware.CheckAccess(p.Caveats, p.IsSession(), p.OrgID, p.UserID, func(orgID uint64) (middleware.Standing, error) {
		m, err := s.membership(ctx, orgID, p.UserID)
		if errors.Is(err, store.ErrNotFound) {
			return middleware.NotMember, nil
		}
		if err != nil {
			return middleware.NotMember, err
		}
		role = m.Role
		return standing(m.Role), nil
	}, a)
	return role, err
}

// standing is a role as the access rule reads it.
func standing(r store.Role) middleware.Standing {
	if r == store.RoleAdmin {
		return middleware.Admin
	}
	return middleware.Member
}
