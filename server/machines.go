package server

import (
	"fmt"
	"net/http"

	"github.com/caveatdev/caveat/machines"
)

// registerMachines mounts the Machines API under /v1/apps/{app}/machines
// (and its action table at /v1/machines/actions) when the role is on. It
// verifies tokens with this server's authority, in process.
func (s *Server) registerMachines(mux *http.ServeMux) error {
	if !s.cfg.has(RoleMachines) {
		return nil
	}
	st, ok := s.store.(machines.Store)
	if !ok {
		return fmt.Errorf("the %T store does not keep machines", s.store)
	}
	svc, err := machines.New(machines.Config{
		Store:          st,
		Auth:           s.LocalAuthenticator(),
		TransitionTime: s.cfg.MachineTransitionTime,
		Now:            s.cfg.Now,
		Logger:         s.log.With("service", "machines"),
	})
	if err != nil {
		return err
	}
	svc.Register(mux)
	s.machines = svc
	return nil
}
