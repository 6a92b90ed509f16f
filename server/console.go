package server

import (
	"net/http"

	"github.com/caveatdev/caveat/console"
)

// registerConsole mounts the web console at / when the role is on. It
// works through this process's authority and login service (the config
// requires both roles), and its machines pages through the Machines API's
// service when that role is on too.
func (s *Server) registerConsole(mux *http.ServeMux) error {
	if !s.cfg.has(RoleConsole) {
		return nil
	}
	c, err := console.New(console.Config{
		Authority: s.authority,
		Identity:  s.identity,
		Keyring:   s.keyring,
		Machines:  s.machines,
		Store:     s.store,
		PublicURL: s.url,
		Now:       s.cfg.Now,
		Logger:    s.log.With("service", "console"),
	})
	if err != nil {
		return err
	}
	c.Register(mux)
	return nil
}
