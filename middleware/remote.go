package middleware

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/api"
	"github.com/caveatdev/caveat/authority"
	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/internal/tokencache"
	"github.com/caveatdev/caveat/store"
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
	// is authenticated by the authority, and Authenticate fails (Require
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
	cache *tokencache.Cache[*remotePrincipal]
	feed  tokencache.Feed

	mu     sync.Mutex
	cursor uint64
}

// errNoFeedToken is Poll's and Run's error without RemoteConfig.FeedToken.
var errNoFeedToken = errors.New("middleware: RemoteConfig.FeedToken is empty: the revocation feed needs a token, " +
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
	return &Remote{cfg: cfg, cache: tokencache.New[*remotePrincipal](tokencache.Limits{Entries: cfg.CacheSize, Bytes: cfg.CacheBytes})}
}

// Authenticate implements Authenticator.
func (rm *Remote) Authenticate(ctx context.Context, header string) (Principal, error) {
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
	body, _ := json.Marshal(map[string]string{"header": header})
	// The answer is Fly's shape: an array of the verified permission
	// tokens (caveat's authority returns the one it verified), each with
	// caveat's own fields.
	var verified []api.VerifiedToken
	if err := rm.call(ctx, "POST", "/v1/tokens/authenticate", "", body, &verified); err != nil {
		return nil, err
	}
	if len(verified) == 0 {
		return nil, fault.Errorf(fault.Unauthenticated, "the authority verified no permission token in the bundle")
	}
	out := verified[0]
	raw, err := base64.StdEncoding.DecodeString(out.CaveatsMsgpack)
	if err != nil {
		return nil, fmt.Errorf("authenticate: the authority's caveats are not base64: %w", err)
	}
	cs, err := caveat.ParseCaveatSet(raw)
	if err != nil {
		return nil, fmt.Errorf("authenticate: the authority's caveats do not decode: %w", err)
	}
	p := &remotePrincipal{tokenID: out.TokenID, orgID: out.OrgID, userID: out.UserID,
		session: out.Kind == "session", caveats: cs, roles: map[uint64]store.Role{}, now: rm.cfg.Now}
	if out.ExpiresAt != nil {
		p.expires = *out.ExpiresAt
	}
	for _, m := range out.Memberships {
		p.roles[m.ID] = store.Role(m.Role)
	}
	// What caching p keeps alive: the caveats' wire bytes (which their
	// bodies alias), their headers, the roles and the rest.
	p.size = remoteOverhead + len(raw) + len(cs)*int(unsafe.Sizeof(caveat.RawCaveat{})) + len(p.tokenID) + 48*len(p.roles)
	return p, nil
}

// call makes one request to the authority, with auth as its Authorization
// header if not empty. A 4xx answer is returned as a *fault.Error with
// the code of the authority's status (an *httpjson.Error with the status
// when no code has it) and the authority's message.
func (rm *Remote) call(ctx context.Context, method, path, auth string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, rm.cfg.URL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := rm.cfg.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("authority: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("authority: %w", err)
	}
	if resp.StatusCode >= 400 && resp.StatusCode < 500 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) != nil || e.Error == "" {
			e.Error = http.StatusText(resp.StatusCode)
		}
		if code, ok := httpjson.CodeOf(resp.StatusCode); ok {
			return fault.Errorf(code, "%s", e.Error)
		}
		return httpjson.Errorf(resp.StatusCode, "%s", e.Error)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("authority: %s %s: HTTP %d", method, path, resp.StatusCode)
	}
	return json.Unmarshal(raw, out)
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
		var out struct {
			Revocations []struct {
				Cursor  uint64 `json:"cursor"`
				TokenID string `json:"token_id"`
			} `json:"revocations"`
			Cursor uint64 `json:"cursor"`
		}
		if err := rm.call(ctx, "GET", fmt.Sprintf("/v1/tokens/revocations?after=%d", cursor), rm.cfg.FeedToken, nil, &out); err != nil {
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
// verified, with the rule of authority.CheckAccess.
type remotePrincipal struct {
	tokenID string
	orgID   uint64
	userID  uint64
	session bool
	caveats caveat.CaveatSet
	roles   map[uint64]store.Role
	expires time.Time
	now     func() time.Time
	size    int // what caching it keeps alive
}

func (p *remotePrincipal) Allow(_ context.Context, a *flyio.Access) error {
	if a.Time.IsZero() {
		a.Time = p.now()
	}
	return authority.CheckAccess(p.caveats, p.session, p.orgID, p.userID, func(orgID uint64) (store.Role, error) {
		if r, ok := p.roles[orgID]; ok {
			return r, nil
		}
		return "", store.ErrNotFound
	}, a)
}

func (p *remotePrincipal) TokenID() string { return p.tokenID }
func (p *remotePrincipal) OrgID() uint64   { return p.orgID }
func (p *remotePrincipal) UserID() uint64  { return p.userID }
