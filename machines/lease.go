package machines

// Leases. A lease lets one client change a machine while others wait:
// while a lease is active, every change of the machine (start, stop,
// suspend, restart, signal, update, destroy, metadata) must present its
// nonce in the fly-machine-lease-nonce header, or is refused with 409.
// Taking, refreshing and releasing a lease is action C on the machine,
// like the control operations it guards (see the package doc). The nonce
// is shown only to the client that takes the lease.

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/caveatdev/caveat/api"
	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/middleware"
	"github.com/caveatdev/caveat/resset"
	"github.com/caveatdev/caveat/store"
)

// LeaseNonceHeader carries the nonce of the lease a request holds.
const LeaseNonceHeader = "fly-machine-lease-nonce"

// Lease TTL bounds, in the units of the ttl parameter (seconds).
const (
	DefaultLeaseTTL = 30 * time.Second
	MaxLeaseTTL     = time.Hour
)

// Lease is a machine's lease as the API shows it.
type Lease struct {
	// Nonce is set only in the answer to the client that took the lease.
	Nonce     string    `json:"nonce,omitempty"`
	ExpiresAt time.Time `json:"-"`
	Owner     string    `json:"owner"`
	// Version is the instance id of the machine when the lease was taken;
	// empty for a principal that may not read the machine.
	Version string `json:"version,omitempty"`
}

func leaseResponse(l Lease) api.LeaseResponse {
	return api.LeaseResponse{Status: "success", Data: api.MachineLease{Nonce: l.Nonce, ExpiresAt: l.ExpiresAt.Unix(), Owner: l.Owner, Version: l.Version}}
}

// checkLease refuses a change of a leased machine without the lease's
// nonce. A nonce given for a machine without an active lease is accepted:
// the lease it named has ended, and nothing else holds the machine. The
// refusal names the holder and the lease's end only to a principal that
// may read the machine.
func (s *Service) checkLease(ctx context.Context, t *Target, m *store.Machine, nonce string, now time.Time) error {
	if !m.Lease.Active(now) {
		return nil
	}
	if nonce != "" && subtle.ConstantTimeCompare([]byte(nonce), []byte(m.Lease.Nonce)) == 1 {
		return nil
	}
	holder, err := s.leaseHolder(ctx, t, m.Lease)
	if err != nil {
		return err
	}
	if nonce == "" {
		return fault.Errorf(fault.Conflict, "machine %s is leased%s: send the lease's nonce in the %s header",
			m.ID, holder, LeaseNonceHeader)
	}
	return fault.Errorf(fault.Conflict, "machine %s is leased%s, and the %s header does not hold that lease's nonce",
		m.ID, holder, LeaseNonceHeader)
}

// leaseHolder describes an active lease for a refusal: " by OWNER until
// TIME" for a principal that may read the machine (GET /lease would show
// it), nothing for one that may not.
func (s *Service) leaseHolder(ctx context.Context, t *Target, l store.MachineLease) (string, error) {
	readable, err := s.mayRead(ctx, t)
	if err != nil || !readable {
		return "", err
	}
	return fmt.Sprintf(" by %s until %s", l.Owner, l.ExpiresAt.UTC().Format(time.RFC3339)), nil
}

// owner names the principal in a lease: its named token, or its user.
func owner(p middleware.Principal) string {
	if p.OrgID() != 0 && p.TokenID() != "" {
		return "token:" + p.TokenID()
	}
	return "user:" + strconv.FormatUint(p.UserID(), 10)
}

// ParseLeaseTTL reads the ttl parameter: whole seconds from 1 to
// MaxLeaseTTL; "" is DefaultLeaseTTL.
func ParseLeaseTTL(s string) (time.Duration, error) {
	if s == "" {
		return DefaultLeaseTTL, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 || n > int64(MaxLeaseTTL/time.Second) {
		return 0, fault.Errorf(fault.Invalid, "ttl %q: want whole seconds from 1 to %d", s, int64(MaxLeaseTTL/time.Second))
	}
	return time.Duration(n) * time.Second, nil
}

// AcquireLease takes the machine's lease for ttl (action C), or refuses
// with 409 naming who holds it.
func (s *Service) AcquireLease(ctx context.Context, t *Target, ttl time.Duration) (Lease, error) {
	if err := s.require(ctx, t, resset.ActionControl); err != nil {
		return Lease{}, err
	}
	m, err := s.load(ctx, t.App, t.ID)
	if err != nil {
		return Lease{}, err
	}
	if err := opKeep.check(&m); err != nil {
		return Lease{}, err
	}
	now := s.now()
	l := store.MachineLease{Nonce: newNonce(), Owner: owner(t.p), ExpiresAt: now.Add(ttl), Version: m.InstanceID}
	got, err := s.cfg.Store.AcquireMachineLease(ctx, t.App.ID, t.ID, l, now)
	switch {
	case errors.Is(err, store.ErrLeased):
		holder, err := s.leaseHolder(ctx, t, got.Lease)
		if err != nil {
			return Lease{}, err
		}
		return Lease{}, fault.Errorf(fault.Conflict, "machine %s is already leased%s", t.ID, holder)
	case err != nil:
		return Lease{}, leaseRefused(t, err)
	}
	return s.leaseAnswer(ctx, t, got.Lease)
}

// leaseAnswer is the lease its taker gets back: with its nonce, and the
// version (the machine's instance id) only for a principal that may read
// the machine.
func (s *Service) leaseAnswer(ctx context.Context, t *Target, l store.MachineLease) (Lease, error) {
	readable, err := s.mayRead(ctx, t)
	if err != nil {
		return Lease{}, err
	}
	out := Lease{Nonce: l.Nonce, ExpiresAt: l.ExpiresAt, Owner: l.Owner}
	if readable {
		out.Version = l.Version
	}
	return out, nil
}

// leaseRefused turns the store's lease refusals into answers.
func leaseRefused(t *Target, err error) error {
	switch {
	case errors.Is(err, store.ErrNoLease):
		return fault.Errorf(fault.Conflict, "machine %s has no active lease (it expired or was released): acquire a new one", t.ID)
	case errors.Is(err, store.ErrLeased):
		return fault.Errorf(fault.Conflict, "the %s header does not hold the nonce of machine %s's lease", LeaseNonceHeader, t.ID)
	case errors.Is(err, store.ErrNotFound):
		return notFound("no machine %q in app %q", t.ID, t.App.Name)
	}
	return fmt.Errorf("lease: %w", err)
}

func requireNonce(nonce string) error {
	if nonce == "" {
		return fault.Errorf(fault.Invalid, "send the lease's nonce in the %s header", LeaseNonceHeader)
	}
	return nil
}

// RefreshLease extends the lease whose nonce is given to ttl from now:
// action C.
func (s *Service) RefreshLease(ctx context.Context, t *Target, nonce string, ttl time.Duration) (Lease, error) {
	if err := s.require(ctx, t, resset.ActionControl); err != nil {
		return Lease{}, err
	}
	if err := requireNonce(nonce); err != nil {
		return Lease{}, err
	}
	now := s.now()
	got, err := s.cfg.Store.RefreshMachineLease(ctx, t.App.ID, t.ID, nonce, now.Add(ttl), now)
	if err != nil {
		return Lease{}, leaseRefused(t, err)
	}
	return s.leaseAnswer(ctx, t, got.Lease)
}

// ReleaseLease ends the lease whose nonce is given: action C.
func (s *Service) ReleaseLease(ctx context.Context, t *Target, nonce string) error {
	if err := s.require(ctx, t, resset.ActionControl); err != nil {
		return err
	}
	if err := requireNonce(nonce); err != nil {
		return err
	}
	if _, err := s.cfg.Store.ReleaseMachineLease(ctx, t.App.ID, t.ID, nonce, s.now()); err != nil {
		return leaseRefused(t, err)
	}
	return nil
}

// GetLease returns the machine's active lease, without its nonce, or 404:
// action r.
func (s *Service) GetLease(ctx context.Context, t *Target) (Lease, error) {
	if err := s.require(ctx, t, resset.ActionRead); err != nil {
		return Lease{}, err
	}
	m, err := s.load(ctx, t.App, t.ID)
	if err != nil {
		return Lease{}, err
	}
	if !m.Lease.Active(s.now()) {
		return Lease{}, notFound("machine %s has no active lease", t.ID)
	}
	return Lease{ExpiresAt: m.Lease.ExpiresAt, Owner: m.Lease.Owner, Version: m.Lease.Version}, nil
}
