package client

// Remote is the middleware.Authenticator of services that do not hold the
// authority's keys: it verifies through the authority's HTTP API, with
// the rest of this package's calls.
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
// authenticated by the authority afresh, and fails (middleware.Require
// answers 503) when that cannot be done: a revoked token is never allowed
// from the cache for longer than the window.

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/api"
	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/internal/tokencache"
	"github.com/caveatdev/caveat/middleware"
)

// RemoteConfig configures a Remote authenticator.
type RemoteConfig struct {
	// URL is the authority's base URL (without /v1).
	URL string
	// FeedToken is the token Remote presents to read the authority's
	// revocation feed, which needs a valid token of any kind: create one
	// for the purpose (for instance "caveat tokens create readonly --name
	// revocation-feed --expiry 8760h") and renew it before it expires.
	// Without it, or while the feed refuses it, nothing cached is served:
	// every request is authenticated by the authority.
	FeedToken string
	// HTTP makes the requests; a client with a 10 s timeout when nil.
	HTTP *http.Client
	// CacheSize bounds the verified bundles kept (DefaultCacheSize when 0).
	CacheSize int
	// CacheBytes bounds the memory they hold (DefaultCacheBytes when 0).
	CacheBytes int64
	// TokenTTL bounds how long a named token's verification is reused
	// (DefaultTokenTTL when 0); revocation evicts it sooner.
	TokenTTL time.Duration
	// SessionTTL bounds how long a session's verification is reused
	// (DefaultSessionTTL when 0). Logouts are not in the revocation feed,
	// so this is how soon a logout reaches the cache.
	SessionTTL time.Duration
	// SettleWindow is how long after its last complete read of the
	// revocation feed a cached verification is still served
	// (DefaultSettleWindow when 0): the most a revocation can take to be
	// honoured, even while the feed cannot be read. Past it, every bundle
	// is authenticated by the authority, and Principal fails (Require
	// answers 503) when the authority cannot be reached.
	SettleWindow time.Duration
	// PollInterval is how often the revocation feed is read (when 0,
	// DefaultPollInterval or half of SettleWindow, whichever is shorter).
	// It should be well under SettleWindow.
	PollInterval time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger receives feed errors; nothing when nil.
	Logger *slog.Logger
}

// Defaults of RemoteConfig.
const (
	DefaultCacheSize    = 10_000
	DefaultCacheBytes   = 64 << 20
	DefaultTokenTTL     = 5 * time.Minute
	DefaultSessionTTL   = time.Second
	DefaultSettleWindow = time.Second
	DefaultPollInterval = 500 * time.Millisecond
)

// remoteOverhead is what a cached remotePrincipal holds besides its
// caveats and roles.
const remoteOverhead = 256

// Remote authenticates through the authority's /v1/tokens/authenticate
// endpoint, for services that do not hold the keys. It keeps each verified
// bundle, by the SHA-256 of the header, with its verified caveats (in wire
// form) and a session's memberships, and clears accesses itself: a cached
// bundle costs no round trip. A background loop (Run) reads the authority's
// revocation feed and evicts revoked tokens, so that a revocation reaches
// the cache within PollInterval; a cached bundle is served only while that
// loop has read the feed to its end within SettleWindow, so a revocation
// is honoured within SettleWindow even when the feed cannot be read.
// Entries also expire after TokenTTL or SessionTTL, and at the bundle's
// own expiry. Failed verifications are not cached.
type Remote struct {
	cfg   RemoteConfig
	api   *Client // the authority
	cache *tokencache.Cache[*remotePrincipal]
	feed  tokencache.Feed

	mu     sync.Mutex
	cursor uint64
}

// errNoFeedToken is Poll's and Run's error without RemoteConfig.FeedToken.
var errNoFeedToken = errors.New("client: RemoteConfig.FeedToken is empty: the revocation feed needs a token, " +
	"so nothing cached can be served and every request asks the authority")

// NewRemote returns a Remote authenticator. Call Run to follow the
// revocation feed.
func NewRemote(cfg RemoteConfig) *Remote {
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.CacheBytes <= 0 {
		cfg.CacheBytes = DefaultCacheBytes
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.SettleWindow <= 0 {
		cfg.SettleWindow = DefaultSettleWindow
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = min(DefaultPollInterval, cfg.SettleWindow/2)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Remote{cfg: cfg, api: New(cfg.URL, cfg.HTTP), cache: tokencache.New[*remotePrincipal](tokencache.Limits{Entries: cfg.CacheSize, Bytes: cfg.CacheBytes})}
}

var _ middleware.Authenticator = (*Remote)(nil)

// Principal implements middleware.Authenticator: the authority's refusal
// (a 4xx answer) is a *fault.Error with the code of its status and its
// message; an authority that cannot be asked, or whose answer cannot be
// read, is any other error.
func (rm *Remote) Principal(ctx context.Context, header string) (middleware.Principal, error) {
	if header == "" {
		return nil, fault.Errorf(fault.Unauthenticated, "no token: send Authorization: FlyV1 fm2_…")
	}
	k := tokencache.KeyOf(header)
	now := rm.cfg.Now()
	if rm.feed.Current(now, rm.cfg.SettleWindow) {
		if p, ok := rm.cache.Get(k, now); ok {
			return p, nil
		}
	}
	gen := rm.cache.Generation()
	p, err := rm.ask(ctx, header)
	if err != nil {
		return nil, err
	}
	ttl := rm.cfg.TokenTTL
	if p.session {
		ttl = rm.cfg.SessionTTL
	}
	expires := now.Add(ttl)
	if !p.expires.IsZero() && p.expires.Before(expires) {
		expires = p.expires
	}
	// Not cached if a revocation was applied while we were asking.
	rm.cache.Put(k, tokencache.Item[*remotePrincipal]{Token: p.tokenID, Value: p, Size: p.size, Expires: expires}, now, gen)
	return p, nil
}

// ask calls /v1/tokens/authenticate.
func (rm *Remote) ask(ctx context.Context, header string) (*remotePrincipal, error) {
	// The answer is Fly's shape: an array of the verified permission
	// tokens (caveat's authority returns the one it verified), each with
	// caveat's own fields.
	out, err := rm.api.Authenticate(ctx, header)
	if err != nil {
		return nil, refusal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(out.CaveatsMsgpack)
	if err != nil {
		return nil, fmt.Errorf("authenticate: the authority's caveats are not base64: %w", err)
	}
	cs, err := caveat.ParseCaveatSet(raw)
	if err != nil {
		return nil, fmt.Errorf("authenticate: the authority's caveats do not decode: %w", err)
	}
	p := &remotePrincipal{tokenID: out.TokenID, orgID: out.OrgID, userID: out.UserID,
		session: out.Kind == "session", caveats: cs, roles: map[uint64]middleware.Standing{}, now: rm.cfg.Now}
	if out.ExpiresAt != nil {
		p.expires = *out.ExpiresAt
	}
	for _, m := range out.Memberships {
		// A role other than admin is a member's: the authority names only
		// these two, and an unknown one must not grant more.
		p.roles[m.ID] = middleware.Member
		if m.Role == "admin" {
			p.roles[m.ID] = middleware.Admin
		}
	}
	// What caching p keeps alive: the caveats' wire bytes (which their
	// bodies alias), their headers, the roles and the rest.
	p.size = remoteOverhead + len(raw) + len(cs)*int(unsafe.Sizeof(caveat.RawCaveat{})) + len(p.tokenID) + 48*len(p.roles)
	return p, nil
}

// refusal sorts an error of a call to the authority: its refusal (a 4xx
// answer) is relayed as a *fault.Error with the code of its status (an
// *httpjson.Error with the status when no code has it) and the
// authority's message; anything else is a failure to ask it. An answer
// that is not a caveat server's JSON error (a proxy's page) stands for
// its status's text alone, whether relayed or in the failure: the page is
// not the authority's to show the service's callers, and one that echoes
// the request would put a token into the logs.
func refusal(err error) error {
	var ae *APIError
	if errors.As(err, &ae) && ae.page {
		ae = &APIError{Status: ae.Status, Message: http.StatusText(ae.Status), RetryAfter: ae.RetryAfter}
		err = ae
	}
	if ae == nil || ae.Status < 400 || ae.Status >= 500 {
		return fmt.Errorf("authority: %w", err)
	}
	if code, ok := httpjson.CodeOf(ae.Status); ok {
		return &fault.Error{Code: code, Message: ae.Message, Err: err}
	}
	return &httpjson.Error{Status: ae.Status, Msg: ae.Message, Err: err}
}

// revocations reads a page of the revocation feed after the cursor, with
// the feed token.
func (rm *Remote) revocations(ctx context.Context, after uint64) (api.Revocations, error) {
	var out api.Revocations
	err := rm.api.do(ctx, "GET", "/v1/tokens/revocations?"+url.Values{"after": {strconv.FormatUint(after, 10)}}.Encode(), nil, &out,
		http.Header{"Authorization": {rm.cfg.FeedToken}})
	if err != nil {
		return out, refusal(err)
	}
	return out, nil
}

// Run follows the revocation feed until ctx is done, evicting revoked
// tokens from the cache and sweeping its expired entries. Without
// RemoteConfig.FeedToken it returns an error at once.
func (rm *Remote) Run(ctx context.Context) error {
	if rm.cfg.FeedToken == "" {
		rm.cfg.Logger.ErrorContext(ctx, "cannot follow the revocation feed", "err", errNoFeedToken)
		return errNoFeedToken
	}
	t := time.NewTicker(rm.cfg.PollInterval)
	defer t.Stop()
	failing := false
	for {
		err := rm.Poll(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			rm.cfg.Logger.WarnContext(ctx, "reading the revocation feed; asking the authority for every request until it answers", "err", err)
			failing = true
		case err == nil && failing:
			rm.cfg.Logger.InfoContext(ctx, "the revocation feed answers again")
			failing = false
		}
		rm.cache.Sweep(rm.cfg.Now())
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Poll reads the revocation feed from where the last call stopped (from
// the start, the first time) to its end, and evicts what it names. When it
// succeeds, the feed is confirmed current as of the call's start.
func (rm *Remote) Poll(ctx context.Context) error {
	if rm.cfg.FeedToken == "" {
		return errNoFeedToken
	}
	start := rm.cfg.Now()
	for {
		rm.mu.Lock()
		cursor := rm.cursor
		rm.mu.Unlock()
		out, err := rm.revocations(ctx, cursor)
		if err != nil {
			return fmt.Errorf("revocation feed: %w", err)
		}
		for _, r := range out.Revocations {
			rm.cache.EvictToken(r.TokenID)
		}
		rm.mu.Lock()
		if out.Cursor > rm.cursor {
			rm.cursor = out.Cursor
		}
		rm.mu.Unlock()
		if len(out.Revocations) == 0 {
			rm.feed.Confirm(start)
			return nil
		}
	}
}

// Len reports how many bundles are cached.
func (rm *Remote) Len() int { return rm.cache.Len() }

// Bytes reports the memory the cached bundles hold, as the cache counts it
// against RemoteConfig.CacheBytes.
func (rm *Remote) Bytes() int64 { return rm.cache.Bytes() }

// remotePrincipal clears accesses against the caveats the authority
// verified, with the rule of middleware.CheckAccess.
type remotePrincipal struct {
	tokenID string
	orgID   uint64
	userID  uint64
	session bool
	caveats caveat.CaveatSet
	roles   map[uint64]middleware.Standing
	expires time.Time
	now     func() time.Time
	size    int // what caching it keeps alive
}

func (p *remotePrincipal) Allow(_ context.Context, a *flyio.Access) error {
	if a.Time.IsZero() {
		a.Time = p.now()
	}
	return middleware.CheckAccess(p.caveats, p.session, p.orgID, p.userID, func(orgID uint64) (middleware.Standing, error) {
		return p.roles[orgID], nil // absent: NotMember
	}, a)
}

func (p *remotePrincipal) TokenID() string { return p.tokenID }
func (p *remotePrincipal) OrgID() uint64   { return p.orgID }
func (p *remotePrincipal) UserID() uint64  { return p.userID }
