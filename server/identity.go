package server

import (
	"net/http"

	"github.com/caveatdev/caveat/identity"
)

// registerIdentity mounts the login service under /aaa/v1 when the role is
// on.
func (s *Server) registerIdentity(mux *http.ServeMux) error {
	if !s.cfg.has(RoleIdentity) {
		return nil
	}
	svc, err := identity.New(identity.Config{
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
	})
	if err != nil {
		return err
	}
	mux.Handle("/aaa/v1/", svc.Handler())
	s.identity = svc
	return nil
}
