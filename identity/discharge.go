package identity

// The discharger of the login third-party caveat. The protocol is tp's;
// this file decides: who the principal is (a session secret, or a login on
// the browser page), whether the ticket's caveats allow a discharge for
// that user, and what the discharge says.

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/auth"
)

// refusal is a ticket that does not allow a discharge for the user; its
// message names the caveat and goes to the client.
type refusal struct{ msg string }

func (e *refusal) Error() string { return e.msg }

// attest clears a ticket's caveats for user uid and returns the caveats of
// the discharge: a ValidityWindow from now for the discharge lifetime, and
// the user's FlyioUserID. The lifetime is DischargeTTL, shortened by the
// ticket's MaxValidity and by end (the session's end) when it is not zero.
// A ticket that does not allow it is a *refusal.
func (s *Service) attest(ctx context.Context, uid uint64, ticket caveat.CaveatSet, now, end time.Time) ([]caveat.Caveat, error) {
	orgs, err := s.cfg.Store.ListUserOrganizations(ctx, uid)
	if err != nil {
		return nil, fmt.Errorf("organizations of user %d: %w", uid, err)
	}
	ids := make([]uint64, len(orgs))
	for i, o := range orgs {
		ids[i] = o.ID
	}
	life := s.cfg.DischargeTTL
	for _, c := range ticket {
		if c.Type != auth.TypeMaxValidity {
			continue
		}
		v, err := c.Decode()
		if err != nil {
			return nil, &refusal{fmt.Sprintf("discharge refused: the ticket's MaxValidity is malformed: %v", err)}
		}
		life = min(life, v.(*auth.MaxValidity).Duration())
	}
	expiry := now.Add(life)
	if !end.IsZero() && expiry.After(end) {
		expiry = end
	}
	req := &auth.DischargeRequest{
		Flyio:  []auth.FlyioIdentity{{UserID: uid, OrganizationIDs: ids}},
		Expiry: expiry,
		Time:   now,
	}
	if err := ticket.Clear(req); err != nil {
		return nil, &refusal{"discharge refused: " + err.Error()}
	}
	att := auth.FlyioUserID(uid)
	return []caveat.Caveat{
		&caveat.ValidityWindow{NotBefore: now.Unix(), NotAfter: expiry.Unix()},
		&att,
	}, nil
}

// describeCaveats renders a ticket's caveats as JSON for the page, or
// "none".
func describeCaveats(cs caveat.CaveatSet) string {
	if len(cs) == 0 {
		return "none."
	}
	b, err := json.Marshal(cs)
	if err != nil {
		return fmt.Sprintf("%d caveats.", len(cs))
	}
	return string(b)
}
