package server

import (
	"net/http"
	"time"

	"github.com/caveatdev/caveat/identity"
	"github.com/caveatdev/caveat/store"
	"github.com/caveatdev/caveat/store/postgres"
	"github.com/caveatdev/caveat/tp"
)

// sharedState is implemented by stores that several replicas share
// (PostgreSQL): they hold the pending browser logins, the discharger's
// flows and the login throttles, so that any replica answers any poll and
// a password guess costs the same bucket wherever it lands. Other stores
// (SQLite: one server) leave them in the process's memory.
type sharedState interface {
	store.WebLogins
	store.Throttles
	FlowStore(max int, now func() time.Time) tp.FlowStore
}

var _ sharedState = (*postgres.DB)(nil)

// registerIdentity mounts the login service under /aaa/v1 when the role is
// on.
func (s *Server) registerIdentity(mux *http.ServeMux) error {
	if !s.cfg.has(RoleIdentity) {
		return nil
	}
	cfg := identity.Config{
		Store:          s.store,
		Keyring:        s.keyring,
		Location:       s.LoginLocation(),
		TokenLocation:  s.TokenLocation(),
		DischargeTTL:   s.cfg.DischargeTTL,
		SessionTTL:     s.cfg.SessionTTL,
		SignupOpen:     s.cfg.Signup,
		RequireBinding: s.cfg.RequireDischargeBinding,
		Argon2:         s.cfg.Argon2,
		OnSessionEnd:   s.authority.EvictSession,
		Now:            s.cfg.Now,
		Logger:         s.log.With("service", "identity"),
	}
	if sh, ok := s.store.(sharedState); ok {
		cfg.WebLogins, cfg.Throttles = sh, sh
		cfg.DischargeFlows = sh.FlowStore(tp.DefaultMaxFlows, s.cfg.Now)
	}
	svc, err := identity.New(cfg)
	if err != nil {
		return err
	}
	mux.Handle("/aaa/v1/", svc.Handler())
	s.identity = svc
	return nil
}
