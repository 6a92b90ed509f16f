package machines

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/middleware"
	"github.com/caveatdev/caveat/resset"
	"github.com/caveatdev/caveat/store"
)

// Store is what the service keeps in the database: the machines, and the
// apps and memberships that names are resolved through.
type Store interface {
	store.Apps
	store.Organizations
	store.Machines
}

// Defaults of Config.
const (
	DefaultTransitionTime = 500 * time.Millisecond
	DefaultRegion         = "local"
	DefaultWaitPoll       = 250 * time.Millisecond
)

// Config configures a Service.
type Config struct {
	Store Store
	// Auth authenticates every request.
	Auth middleware.Authenticator
	// TransitionTime is how long a simulated transition (starting,
	// stopping, …) takes; DefaultTransitionTime when 0.
	TransitionTime time.Duration
	// DefaultRegion is the region of machines created without one;
	// DefaultRegion when empty.
	DefaultRegion string
	// WaitPoll bounds how long wait goes without reading the store, so
	// that it sees changes made by other replicas; DefaultWaitPoll when 0.
	WaitPoll time.Duration
	// Now is the clock that transitions, leases and records are dated
	// with; time.Now when nil. Waiting is measured on the real clock.
	Now    func() time.Time
	Logger *slog.Logger
}

// Service is the Machines API.
type Service struct {
	cfg    Config
	notify notifier
}

// New returns the service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Auth == nil {
		return nil, errors.New("machines: Store and Auth are required")
	}
	if cfg.TransitionTime < 0 || cfg.WaitPoll < 0 {
		return nil, errors.New("machines: TransitionTime and WaitPoll must not be negative")
	}
	if cfg.TransitionTime == 0 {
		cfg.TransitionTime = DefaultTransitionTime
	}
	if cfg.DefaultRegion == "" {
		cfg.DefaultRegion = DefaultRegion
	}
	if !store.ValidSlug(cfg.DefaultRegion) {
		return nil, fmt.Errorf("machines: default region %q is not 1 to 63 of a-z, 0-9 and -", cfg.DefaultRegion)
	}
	if cfg.WaitPoll == 0 {
		cfg.WaitPoll = DefaultWaitPoll
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, notify: notifier{chans: map[string]*watchers{}}}, nil
}

func (s *Service) now() time.Time { return s.cfg.Now() }

// notFound is the answer for an app or machine that does not exist or
// that the principal may not see.
func notFound(format string, args ...any) error {
	return fault.Errorf(fault.NotFound, format, args...)
}

// authError is a refusal of the principal, answered as
// middleware.WriteError answers it.
type authError struct{ err error }

func (e *authError) Error() string { return e.err.Error() }
func (e *authError) Unwrap() error { return e.err }

// refused reports whether err is the principal's refusal (a Denied
// *fault.Error), as opposed to a failure to check it.
func refused(err error) bool {
	var ae *authError
	return errors.As(err, &ae) && fault.CodeOf(ae.err) == fault.Denied
}

// allow clears an access to one machine of the app (id "" is a machine not
// created yet).
func (s *Service) allow(ctx context.Context, p middleware.Principal, app store.App, id string, action resset.Action) error {
	a := &flyio.Access{OrgID: &app.OrgID, AppID: &app.ID, Machine: &id, Action: action}
	if err := p.Allow(ctx, a); err != nil {
		return &authError{err}
	}
	return nil
}

// appReadable applies the rule for reading an app as a whole (list): the
// access {orgid, appid, action r} is allowed, or it is denied only by
// caveats that refused with caveat.ErrResourceUnspecified (caveats that
// restrict machines, volumes or commands say nothing about the app
// itself: fault.Error.OnlyUnspecified) and the principal belongs to the
// app's organization.
func (s *Service) appReadable(ctx context.Context, p middleware.Principal, app store.App) error {
	err := p.Allow(ctx, &flyio.Access{OrgID: &app.OrgID, AppID: &app.ID, Action: resset.ActionRead})
	if err == nil {
		return nil
	}
	if fault.OnlyUnspecified(err) {
		ok, merr := s.inOrganization(ctx, p, app.OrgID)
		if merr != nil {
			return merr
		}
		if ok {
			return nil
		}
	}
	return &authError{err}
}

// inOrganization reports whether the principal belongs to the
// organization: a named token of it, or a session of one of its members.
// Clearing an access checks this too; it is asked here for accesses whose
// caveats did not get that far.
func (s *Service) inOrganization(ctx context.Context, p middleware.Principal, orgID uint64) (bool, error) {
	if o := p.OrgID(); o != 0 {
		return o == orgID, nil
	}
	_, err := s.cfg.Store.GetMembership(ctx, orgID, p.UserID())
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("membership: %w", err)
	}
	return true, nil
}

// resolveApp finds the app a request names. A named token's app is looked
// up in the token's organization only: an app of another organization is
// a 404, the same as an app that does not exist, so that the names of
// other organizations' apps do not leak (a refusal by the token's
// Organization caveat would confirm the app and name its ids). A
// session's is looked up across the organizations its user belongs to,
// among the apps the session may read; a name found in several is a 409
// naming them. An unknown app, or one a session may not see, is a 404.
func (s *Service) resolveApp(ctx context.Context, p middleware.Principal, name string) (store.App, error) {
	if !store.ValidSlug(name) {
		return store.App{}, notFound("no app %q", name)
	}
	if org := p.OrgID(); org != 0 {
		a, err := s.cfg.Store.GetAppByName(ctx, org, name)
		if errors.Is(err, store.ErrNotFound) {
			return a, notFound("no app %q", name)
		}
		if err != nil {
			return a, fmt.Errorf("app: %w", err)
		}
		return a, nil
	}
	apps, err := s.cfg.Store.ListAppsByName(ctx, name, p.UserID())
	if err != nil {
		return store.App{}, fmt.Errorf("apps named %q: %w", name, err)
	}
	var visible []store.App
	// appReadable is the membership check too: the authority's Allow
	// refuses a non-member, and an access its caveats refuse only for
	// naming no machine asks inOrganization. So each app costs one read
	// of the membership, not one here and another in Allow.
	for _, a := range apps {
		err := s.appReadable(ctx, p, a)
		switch {
		case err == nil:
			visible = append(visible, a)
		case !refused(err):
			return store.App{}, err
		}
	}
	switch len(visible) {
	case 0:
		return store.App{}, notFound("no app %q", name)
	case 1:
		return visible[0], nil
	}
	slugs := make([]string, len(visible))
	for i, a := range visible {
		o, err := s.cfg.Store.GetOrganization(ctx, a.OrgID)
		if err != nil {
			return store.App{}, fmt.Errorf("organization: %w", err)
		}
		slugs[i] = o.Slug
	}
	return store.App{}, fault.Errorf(fault.Conflict,
		"app %q exists in several of your organizations (%s): use a token of one organization (caveat tokens create deploy -o ORG -a %s)",
		name, strings.Join(slugs, ", "), name)
}

// Target is a machine of an app (or, with ID "", a machine not created
// yet) that a principal acts on, with the actions already allowed on it.
// Authorize makes one; each operation requires its own action of it.
type Target struct {
	p       middleware.Principal
	App     store.App
	ID      string
	allowed resset.Action
	// unreadable records that action r was refused, so that an answer
	// is cut down without asking again.
	unreadable bool
}

// Authorize resolves the app and clears the access {orgid, appid,
// machine: id, action}. Handlers call it before reading a request's body,
// so that a refused request is refused whatever it holds.
func (s *Service) Authorize(ctx context.Context, p middleware.Principal, appName, id string, action resset.Action) (*Target, error) {
	app, err := s.resolveApp(ctx, p, appName)
	if err != nil {
		return nil, err
	}
	return s.AuthorizeApp(ctx, p, app, id, action)
}

// AuthorizeApp is Authorize for an app that the caller has resolved
// itself (the web console, which names apps within one organization): the
// same access is cleared.
func (s *Service) AuthorizeApp(ctx context.Context, p middleware.Principal, app store.App, id string, action resset.Action) (*Target, error) {
	t := &Target{p: p, App: app, ID: id}
	if err := s.require(ctx, t, action); err != nil {
		return nil, err
	}
	return t, nil
}

// require clears action on the target unless it was cleared already.
func (s *Service) require(ctx context.Context, t *Target, action resset.Action) error {
	if action.IsSubsetOf(t.allowed) {
		return nil
	}
	if err := s.allow(ctx, t.p, t.App, t.ID, action); err != nil {
		return err
	}
	t.allowed |= action
	return nil
}

// mayRead reports whether the principal may read the target machine
// (action r). It decides how much of the machine an answer shows: an
// answer carries only what the token may read, whatever the operation
// (see the package doc). A refusal is false; a failure to check is an
// error, so that an answer is never widened when the check cannot be
// made.
func (s *Service) mayRead(ctx context.Context, t *Target) (bool, error) {
	if t.unreadable {
		return false, nil
	}
	err := s.require(ctx, t, resset.ActionRead)
	switch {
	case err == nil:
		return true, nil
	case refused(err):
		t.unreadable = true
		return false, nil
	}
	return false, err
}

// maxAttempts bounds the retries of a change that keeps meeting
// concurrent changes of the same machine.
const maxAttempts = 16

// errBusy answers a change that lost the race maxAttempts times.
func errBusy(id string) error {
	return fault.Errorf(fault.Conflict, "machine %s is changing concurrently; try again", id)
}

// load reads a machine and records the transitions that are over.
func (s *Service) load(ctx context.Context, app store.App, id string) (store.Machine, error) {
	for range maxAttempts {
		m, err := s.cfg.Store.GetMachine(ctx, app.ID, id)
		if errors.Is(err, store.ErrNotFound) {
			return m, notFound("no machine %q in app %q", id, app.Name)
		}
		if err != nil {
			return m, fmt.Errorf("machine: %w", err)
		}
		events := advance(&m, s.now(), s.cfg.TransitionTime)
		if len(events) == 0 {
			return m, nil
		}
		got, err := s.cfg.Store.UpdateMachine(ctx, m, events...)
		if errors.Is(err, store.ErrStale) {
			continue // someone else recorded it, or changed the machine
		}
		if err != nil {
			return m, fmt.Errorf("record transition: %w", err)
		}
		s.notify.changed(id)
		return got, nil
	}
	return store.Machine{}, errBusy(id)
}

// change applies fn to the target machine as it is now, lease
// permitting, and stores the result with the events fn returns; a
// concurrent change makes it read and decide again. fn may refuse with an
// error.
func (s *Service) change(ctx context.Context, t *Target, nonce string,
	fn func(m *store.Machine, now time.Time) ([]store.MachineEvent, error)) (store.Machine, error) {
	app, id := t.App, t.ID
	for range maxAttempts {
		m, err := s.load(ctx, app, id)
		if err != nil {
			return m, err
		}
		now := s.now()
		if err := s.checkLease(ctx, t, &m, nonce, now); err != nil {
			return m, err
		}
		next := m
		next.Metadata = make(map[string]string, len(m.Metadata))
		for k, v := range m.Metadata {
			next.Metadata[k] = v
		}
		events, err := fn(&next, now)
		if err != nil {
			return m, err
		}
		next.UpdatedAt = now
		got, err := s.cfg.Store.UpdateMachine(ctx, next, events...)
		switch {
		case errors.Is(err, store.ErrStale):
			continue
		case errors.Is(err, store.ErrExists):
			return m, fault.Errorf(fault.Conflict, "app %q already has a machine named %q", app.Name, next.Name)
		case errors.Is(err, store.ErrInvalid):
			return m, fault.Errorf(fault.Invalid, "%v", err)
		case err != nil:
			return m, fmt.Errorf("update machine: %w", err)
		}
		s.notify.changed(id)
		return got, nil
	}
	return store.Machine{}, errBusy(id)
}

// notifier wakes the requests waiting on a machine when this process
// changes it. Changes made by other replicas are seen by polling. An entry
// lives while someone watches it, so that waiting on many machines (or on
// ids that do not exist) leaves nothing behind.
type notifier struct {
	mu    sync.Mutex
	chans map[string]*watchers
}

type watchers struct {
	c chan struct{}
	n int
}

// watch returns a channel closed at the machine's next change, and a
// function to call when no longer waiting. Take it before reading the
// machine, so that no change goes unnoticed.
func (n *notifier) watch(id string) (<-chan struct{}, func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	w, ok := n.chans[id]
	if !ok {
		w = &watchers{c: make(chan struct{})}
		n.chans[id] = w
	}
	w.n++
	return w.c, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		w.n--
		if w.n == 0 && n.chans[id] == w {
			delete(n.chans, id)
		}
	}
}

// changed wakes the machine's watchers.
func (n *notifier) changed(id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if w, ok := n.chans[id]; ok {
		close(w.c)
		delete(n.chans, id)
	}
}
