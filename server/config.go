// Package server runs a caveat server: the authority (/v1), the login
// service (/aaa/v1) and, from the Machines API, /v1/apps/…, on one port,
// over one store (SQLite by default, PostgreSQL for several replicas).
//
// # Running it
//
// The caveat CLI's "caveat server" parses flags into a Config, calls New and
// then Server.Run, which serves until its context is done. End-to-end tests
// do the same in process: New with Listen "127.0.0.1:0", Run in a goroutine
// (URL says where it listens), then cancel the context.
//
// # Keys
//
// Without --master-key-file the server generates a master key in the data
// directory (mode 0600) on first start and reuses it. Several replicas must
// share one master key (and one PostgreSQL): give each the same file.
package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/caveatdev/caveat/authority"
	"github.com/caveatdev/caveat/identity"
	"github.com/caveatdev/caveat/machines"
)

// The roles a server can run.
const (
	RoleAuthority = "authority" // /v1/tokens, /v1/orgs, /v1/apps
	RoleIdentity  = "identity"  // /aaa/v1: signup, login, the login discharger
	RoleMachines  = "machines"  // /v1/apps/{app}/machines: the Machines API
	// RoleConsole is the web console at /; it needs the authority and
	// identity roles in the same process.
	RoleConsole = "console"
)

// AllRoles is the default: everything in one process.
var AllRoles = []string{RoleAuthority, RoleIdentity, RoleMachines, RoleConsole}

// Defaults.
const (
	DefaultListen       = "127.0.0.1:8080"
	DefaultDataDir      = "./caveat-data"
	DefaultDischargeTTL = 10 * time.Minute
	DefaultSessionTTL   = 30 * 24 * time.Hour
	// DefaultMachineTransitionTime is how long a simulated machine
	// transition (starting, stopping, …) takes.
	DefaultMachineTransitionTime = machines.DefaultTransitionTime
	// DefaultRevocationSettle is the settle window of the revocation feed.
	DefaultRevocationSettle = authority.DefaultRevocationSettle
)

// Config is everything a server needs; flags and environment variables of
// "caveat server" fill it.
type Config struct {
	// Listen is the TCP address; port 0 picks a free port.
	Listen string
	// DataDir holds the SQLite database and the generated master key.
	DataDir string
	// DB is a SQLite path or a postgres:// URL; empty means
	// DataDir/caveat.db.
	DB string
	// PublicURL is the base URL clients reach the server at; token
	// locations are PublicURL+"/v1" and PublicURL+"/aaa/v1". Empty means
	// http://<the listening address>.
	PublicURL string
	// MasterKeyFile holds the master key (32 bytes, standard base64);
	// empty means DataDir/master.key, generated when missing.
	MasterKeyFile string
	// DischargeTTL is the lifetime of login discharges.
	DischargeTTL time.Duration
	// SessionTTL is the lifetime of a login session.
	SessionTTL time.Duration
	// Roles are the parts this process serves.
	Roles []string
	// MachineTransitionTime is how long each simulated transition of a
	// machine takes (DefaultMachineTransitionTime when 0).
	MachineTransitionTime time.Duration
	// Signup allows new users to sign up.
	Signup bool
	// RequireDischargeBinding refuses login discharge requests that do not
	// ask for the discharge to be bound to its parent token (tp's
	// "parent_binding", which caveat's own client always sends). By
	// default such a request gets an unbound discharge, as Fly's login
	// service gives Fly's reference client (superfly/macaroon's tp).
	RequireDischargeBinding bool
	// TLSCert and TLSKey are PEM files of the certificate and its key; with
	// both, the server speaks HTTPS only, re-reads them on SIGHUP (see
	// Server.ReloadTLS), and the default public URL is https://.
	TLSCert, TLSKey string
	// MetricsListen, when set, is a second address that serves /metrics
	// and /healthz (plain HTTP), and /metrics leaves the main listener, so
	// that metrics need not be public.
	MetricsListen string
	// RevocationSettle is how long after its last confirmed read of the
	// revocation feed a replica still serves cached verifications
	// (DefaultRevocationSettle when 0): the most a revocation through
	// another replica takes to be honoured here, even while the database
	// or its notifications fail. Past it, every token is checked against
	// the database, and answered 503 if that fails.
	RevocationSettle time.Duration
	// CacheBytes bounds the memory of each cache of verified tokens
	// (authority.DefaultCacheBytes, 64 MiB, when 0).
	CacheBytes int64
	// Retention is how long tokens are kept after they expire
	// (DefaultRetention, 90 days, when 0; at least an hour): housekeeping
	// then deletes them and their revocations (see housekeeping.go).
	Retention time.Duration
	// HousekeepingInterval is how often housekeeping runs, on one replica
	// at a time (DefaultHousekeepingInterval when 0).
	HousekeepingInterval time.Duration
	// Argon2 are the password hashing parameters; the identity package's
	// defaults when zero. Tests lower them.
	Argon2 identity.Argon2Params
	// Logger receives structured logs; nil means JSON on stderr.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// withDefaults fills the zero fields and checks the rest.
func (c Config) withDefaults() (Config, error) {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.DB == "" {
		c.DB = filepath.Join(c.DataDir, "caveat.db")
	}
	if c.MasterKeyFile == "" {
		c.MasterKeyFile = filepath.Join(c.DataDir, "master.key")
	}
	if c.DischargeTTL == 0 {
		c.DischargeTTL = DefaultDischargeTTL
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = DefaultSessionTTL
	}
	if len(c.Roles) == 0 {
		c.Roles = AllRoles
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MachineTransitionTime == 0 {
		c.MachineTransitionTime = DefaultMachineTransitionTime
	}
	if c.RevocationSettle == 0 {
		c.RevocationSettle = DefaultRevocationSettle
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.HousekeepingInterval == 0 {
		c.HousekeepingInterval = DefaultHousekeepingInterval
	}
	var errs []error
	if c.Retention < time.Hour || c.Retention > 100*365*24*time.Hour {
		errs = append(errs, fmt.Errorf("retention %s is not between an hour and a hundred years", c.Retention))
	}
	if c.HousekeepingInterval < 0 {
		errs = append(errs, fmt.Errorf("housekeeping interval %s is negative", c.HousekeepingInterval))
	}
	if c.RevocationSettle < 100*time.Millisecond || c.RevocationSettle > time.Minute {
		errs = append(errs, fmt.Errorf("revocation settle window %s is not between 100ms and a minute", c.RevocationSettle))
	}
	if c.CacheBytes < 0 {
		errs = append(errs, fmt.Errorf("cache bytes %d is negative", c.CacheBytes))
	}
	if c.MachineTransitionTime < 0 || c.MachineTransitionTime > time.Hour {
		errs = append(errs, fmt.Errorf("machine transition time %s is not between 0 and an hour", c.MachineTransitionTime))
	}
	if c.DischargeTTL < time.Second {
		errs = append(errs, fmt.Errorf("discharge TTL %s is shorter than a second", c.DischargeTTL))
	}
	if c.SessionTTL < c.DischargeTTL {
		errs = append(errs, fmt.Errorf("session TTL %s is shorter than the discharge TTL %s", c.SessionTTL, c.DischargeTTL))
	}
	for _, r := range c.Roles {
		if !slices.Contains(AllRoles, r) {
			errs = append(errs, fmt.Errorf("unknown role %q (known: %s)", r, strings.Join(AllRoles, ", ")))
		}
	}
	if c.has(RoleConsole) && (!c.has(RoleAuthority) || !c.has(RoleIdentity)) {
		errs = append(errs, errors.New("the console role needs the authority and identity roles in the same process"))
	}
	if c.PublicURL == "" {
		// Tokens carry the public URL as their location: one made from a
		// wildcard address (http://0.0.0.0:8080, http://[::]:8080) names
		// no host a client can reach.
		if host, _, err := net.SplitHostPort(c.Listen); err == nil {
			if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
				errs = append(errs, fmt.Errorf("listening on every address (%s) needs --public-url, the URL clients reach the server at: tokens carry it as their location", c.Listen))
			}
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("TLS needs both a certificate and its key (--tls-cert and --tls-key)"))
	}
	if c.PublicURL != "" && !strings.HasPrefix(c.PublicURL, "http://") && !strings.HasPrefix(c.PublicURL, "https://") {
		errs = append(errs, fmt.Errorf("public URL %q must start with http:// or https://", c.PublicURL))
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	return c, errors.Join(errs...)
}

func (c Config) has(role string) bool { return slices.Contains(c.Roles, role) }
