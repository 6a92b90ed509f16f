package server

import "github.com/caveatdev/caveat/middleware"

// LocalAuthenticator returns an authenticator that verifies tokens with
// this server's keys, for the resource APIs it serves and for tests: the
// server's *authority.Service itself.
func (s *Server) LocalAuthenticator() middleware.Authenticator {
	return s.authority
}
