package authority

// The handlers of the token judging endpoints (see judging.go): they
// decode the request, and answer a denial with "allowed": false.

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/caveatdev/caveat/api"
	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/internal/httpjson"
)

func (s *Service) authenticate(ctx context.Context, r *http.Request, w http.ResponseWriter) (int, any, error) {
	var req struct {
		Header string `json:"header"`
	}
	if err := httpjson.Decode(w, r, &req, 0); err != nil {
		return 0, nil, err
	}
	p, err := s.Authenticate(ctx, req.Header)
	if err != nil {
		return 0, nil, err
	}
	out, err := s.verifiedJSON(ctx, p)
	// One object per permission token that verified: the authority
	// verifies the first of the bundle's tokens for its location that does.
	return http.StatusOK, []api.VerifiedToken{out}, err
}

func (s *Service) authorize(ctx context.Context, r *http.Request, w http.ResponseWriter) (int, any, error) {
	var req struct {
		Header string          `json:"header"`
		Access json.RawMessage `json:"access"`
	}
	if err := httpjson.Decode(w, r, &req, 0); err != nil {
		return 0, nil, err
	}
	if len(req.Access) == 0 {
		return 0, nil, badRequest(`"access" is required: the attempted access, e.g. {"org_slug": "acme", "app_name": "workers", "action": "r"}`)
	}
	a, named, err := parseAccess(req.Access)
	if err != nil {
		return 0, nil, err
	}
	// Who asks, before names are resolved: names resolve only within what
	// the caller belongs to, so that another organization's names are as
	// unknown (404) as names that do not exist.
	p, err := s.Authenticate(ctx, req.Header)
	if err != nil {
		return 0, nil, err
	}
	if named != nil {
		if a, err = s.resolve(ctx, p, *named); err != nil {
			return 0, nil, err
		}
	}
	if err := s.Allow(ctx, p, a); err != nil {
		if fe, ok := fault.As(err); ok && fe.Code == fault.Denied {
			return httpjson.Status(fe.Code), map[string]any{"error": fe.Message, "allowed": false}, nil
		}
		return 0, nil, err
	}
	vt, err := s.verifiedJSON(ctx, p)
	return http.StatusOK, AuthorizeJSON{Access: a, VerifiedToken: vt, Allowed: true}, err
}
