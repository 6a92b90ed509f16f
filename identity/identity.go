package identity

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/keyring"
	"github.com/caveatdev/caveat/store"
	"github.com/caveatdev/caveat/store/memory"
	"github.com/caveatdev/caveat/tp"
)

// Store is what the login service keeps in the database.
type Store interface {
	store.Users
	store.Organizations
	store.Sessions
	store.Invitations
}

// Defaults of the Config durations.
const (
	// DefaultDischargeTTL is the lifetime of a login discharge. It is short
	// because a discharge cannot be revoked: a logout takes effect on the
	// session token at once (the authority checks the session), and on
	// tokens attenuated from it when their discharge runs out. Clients
	// holding the session secret renew discharges by themselves.
	DefaultDischargeTTL = 10 * time.Minute
	// DefaultSessionTTL is the lifetime of a session and its token.
	DefaultSessionTTL = 30 * 24 * time.Hour
	// DefaultFlowTTL is how long a browser login (of `caveat auth login
	// --web`, or for a discharge) waits for the user.
	DefaultFlowTTL = 15 * time.Minute
)

// Config configures a Service.
type Config struct {
	// Store holds users, organizations and sessions. Required.
	Store Store
	// Keyring mints session tokens, checks session secrets and opens the
	// tickets of the login third-party caveat. Required.
	Keyring *keyring.Keyring
	// Location is the login service's public URL, the public URL of the
	// server + "/aaa/v1": the location of the login third-party caveat, and
	// the base of the URLs the service hands out. Required.
	Location string
	// TokenLocation is where permission tokens are used, the public URL +
	// "/v1": the location of the session tokens. Required.
	TokenLocation string

	// DischargeTTL is the lifetime of login discharges; a ticket's
	// MaxValidity and the session's end shorten it. DefaultDischargeTTL
	// when zero.
	DischargeTTL time.Duration
	// SessionTTL is the lifetime of a session; DefaultSessionTTL when zero.
	SessionTTL time.Duration
	// FlowTTL is how long a browser login waits for the user;
	// DefaultFlowTTL when zero.
	FlowTTL time.Duration
	// MaxFlows bounds each of the stores of pending browser logins (CLI
	// logins and discharges); tp.DefaultMaxFlows when zero. A full store
	// refuses new flows with 429 until one is collected or expires; it
	// never drops a pending one.
	MaxFlows int
	// WebLogins holds the pending logins of `caveat auth login --web`,
	// and DischargeFlows those of the login discharger, each within
	// MaxFlows; Throttles counts login attempts under AccountLimit and
	// AddressLimit. When nil, each is kept in this process's memory
	// (store/memory, tp.MemoryStore), which suits a server on its own.
	// Replicas behind a load balancer share them in their database (see
	// store/postgres), so that a poll may reach any replica and a guess
	// costs the same wherever it lands.
	WebLogins      store.WebLogins
	DischargeFlows tp.FlowStore
	Throttles      store.Throttles

	// SignupOpen lets anyone create an account with POST /aaa/v1/users.
	// When false, only the first user of the server can: it becomes the
	// admin of the first organization, and everyone else is refused.
	SignupOpen bool
	// RequireBinding refuses discharge requests that do not ask for the
	// discharge to be bound to its parent token (tp's "parent_binding";
	// the reference client does not send it). Each session token has its
	// own ticket, so an unbound login discharge works only with that
	// session token and tokens attenuated from it; binding narrows it to
	// one of them.
	RequireBinding bool

	// Argon2 are the parameters of new password hashes;
	// DefaultArgon2Params when zero.
	Argon2 Argon2Params

	// AccountLimit and AddressLimit limit login attempts per account
	// (email) and per client address; DefaultAccountLimit and
	// DefaultAddressLimit when zero, and off with a negative Burst. The
	// address limit also covers signups and the start of browser logins
	// of both kinds (--web, and discharges without a session secret).
	// They count in Throttles.
	AccountLimit RateLimit
	AddressLimit RateLimit
	// MaxRateKeys bounds the keys each limit tracks in memory when
	// Throttles is nil; DefaultMaxRateKeys when zero.
	MaxRateKeys int
	// TrustProxy takes the client address from the last entry of
	// X-Forwarded-For, as added by the one reverse proxy in front of the
	// server, instead of the connection's address. Without a proxy that
	// sets the header, clients could choose their own address.
	TrustProxy bool

	// OnSessionEnd, when set, is called with the id of a session that a
	// logout has just revoked, so that caches of verified sessions in the
	// same process (the authority's) can forget it at once.
	OnSessionEnd func(id string)

	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger receives the service's events and internal errors;
	// slog.Default() when nil. No log line holds a password, a session
	// secret, a token, a ticket, a discharge or an email address.
	Logger *slog.Logger
}

// Service is the login service: signup, password login, sessions, and the
// discharger of the login third-party caveat.
type Service struct {
	cfg       Config
	loc       string // Location without a trailing slash
	tp        *tp.Server
	web       store.WebLogins
	byAccount *limiter
	byAddress *limiter
	dummyHash string
	// hasUsers is set once a signup found the store not empty, so that a
	// closed signup refuses later ones without hashing their passwords.
	hasUsers atomic.Bool
	// checkPassword is CheckPassword; tests watch it.
	checkPassword func(hash, password string) (bool, error)
	handler       http.Handler
}

// New checks cfg, fills in its defaults and returns the service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Keyring == nil {
		return nil, errors.New("identity: Store and Keyring are required")
	}
	if err := checkLocation("Location", cfg.Location); err != nil {
		return nil, err
	}
	if err := checkLocation("TokenLocation", cfg.TokenLocation); err != nil {
		return nil, err
	}
	if cfg.DischargeTTL == 0 {
		cfg.DischargeTTL = DefaultDischargeTTL
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.FlowTTL == 0 {
		cfg.FlowTTL = DefaultFlowTTL
	}
	if cfg.DischargeTTL < time.Second || cfg.SessionTTL < time.Minute || cfg.FlowTTL < time.Second {
		return nil, errors.New("identity: DischargeTTL must be at least 1s, SessionTTL at least 1m and FlowTTL at least 1s")
	}
	if cfg.MaxFlows <= 0 {
		cfg.MaxFlows = tp.DefaultMaxFlows
	}
	if cfg.Argon2 == (Argon2Params{}) {
		cfg.Argon2 = DefaultArgon2Params
	}
	if err := cfg.Argon2.Validate(); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if cfg.AccountLimit == (RateLimit{}) {
		cfg.AccountLimit = DefaultAccountLimit
	}
	if cfg.AddressLimit == (RateLimit{}) {
		cfg.AddressLimit = DefaultAddressLimit
	}
	if cfg.MaxRateKeys <= 0 {
		cfg.MaxRateKeys = DefaultMaxRateKeys
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.WebLogins == nil {
		cfg.WebLogins = memory.NewWebLogins()
	}
	if cfg.DischargeFlows == nil {
		cfg.DischargeFlows = tp.NewMemoryStore(cfg.MaxFlows, cfg.Now)
	}
	if cfg.Throttles == nil {
		cfg.Throttles = memory.NewThrottles(cfg.MaxRateKeys)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}

	// The hash that unknown emails are checked against, so that a login
	// costs the same whether the account exists or not.
	random := make([]byte, 16)
	rand.Read(random)
	dummy, err := HashPassword(hex.EncodeToString(random), cfg.Argon2)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}

	s := &Service{
		cfg:           cfg,
		loc:           strings.TrimSuffix(cfg.Location, "/"),
		web:           cfg.WebLogins,
		byAccount:     &limiter{name: limiterAccount, limit: cfg.AccountLimit, store: cfg.Throttles, now: cfg.Now},
		byAddress:     &limiter{name: limiterAddress, limit: cfg.AddressLimit, store: cfg.Throttles, now: cfg.Now},
		dummyHash:     dummy,
		checkPassword: CheckPassword,
	}
	s.tp, err = tp.NewServer(tp.Config{
		Location:      cfg.Location,
		Keys:          []caveat.EncryptionKey{cfg.Keyring.LoginTicketKey()},
		Decide:        s.decide,
		Now:           cfg.Now,
		Store:         cfg.DischargeFlows,
		FlowTTL:       cfg.FlowTTL,
		UserURLPrefix: s.loc + dischargePagePrefix,
		Log:           cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	s.handler = s.routes()
	return s, nil
}

func checkLocation(field, loc string) error {
	u, err := url.Parse(loc)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("identity: %s %q is not an absolute http(s) URL without query", field, loc)
	}
	return nil
}

// Paths, under the prefix /aaa/v1, of the pages a browser visits. The
// secret of the flow follows the prefix.
const (
	prefix              = "/aaa/v1"
	cliPagePrefix       = "/login/cli/"
	dischargePagePrefix = "/login/discharge/"
	webPollPrefix       = "/sessions/web/poll/"
)

// limitedError is a refusal by a rate limit or a full flow store: a
// fault.RateLimited *fault.Error (see Unwrap), answered with 429 and
// Retry-After.
type limitedError struct {
	retry time.Duration
	msg   string // what is exhausted; "too many login attempts" when empty
}

func (e *limitedError) Error() string {
	msg := e.msg
	if msg == "" {
		msg = "too many login attempts"
	}
	return msg + "; try again in " + e.retryAfter() + " s"
}

// Unwrap returns the refusal as a fault.RateLimited *fault.Error, so that
// it is classed like the service's other refusals.
func (e *limitedError) Unwrap() error {
	return &fault.Error{Code: fault.RateLimited, Message: e.Error()}
}

// retryAfter is the wait in whole seconds, rounded up, at least 1.
func (e *limitedError) retryAfter() string {
	return strconv.FormatInt(tp.RetrySeconds(e.retry), 10)
}

// clientAddr is the key of the address limit: the client's IP address,
// or for IPv6 its /64, since one host commonly has a whole /64 to choose
// addresses from.
func (s *Service) clientAddr(r *http.Request) string {
	host := r.RemoteAddr
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if s.cfg.TrustProxy {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			last := xff[len(xff)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if last = strings.TrimSpace(last); last != "" {
				host = last
			}
		}
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return "unparsable address"
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// session authenticates a request's "Authorization: Bearer <session
// secret>" and returns its active session. Failures are 401s that say
// what is wrong.
func (s *Service) session(ctx context.Context, header string, now time.Time) (store.Session, error) {
	if header == "" {
		return store.Session{}, fault.Errorf(fault.Unauthenticated, "missing session credential: send Authorization: Bearer <session secret>")
	}
	scheme, secret, _ := strings.Cut(strings.TrimSpace(header), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return store.Session{}, fault.Errorf(fault.Unauthenticated, "the session credential must be sent as Authorization: Bearer <session secret>")
	}
	id, ok := s.cfg.Keyring.CheckSessionSecret(strings.TrimSpace(secret))
	if !ok {
		return store.Session{}, fault.Errorf(fault.Unauthenticated, "invalid session credential")
	}
	sess, err := s.cfg.Store.GetSession(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return sess, fault.Errorf(fault.Unauthenticated, "unknown session; log in again")
	case err != nil:
		return sess, fmt.Errorf("get session: %w", err)
	case !sess.RevokedAt.IsZero():
		return sess, fault.Errorf(fault.Unauthenticated, "session was revoked (logged out); log in again")
	case !sess.Active(now):
		return sess, fault.Errorf(fault.Unauthenticated, "session expired; log in again")
	}
	return sess, nil
}
