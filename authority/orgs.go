package authority

import (
	"context"
	"errors"
	"fmt"

	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/resset"
	"github.com/caveatdev/caveat/store"
)

// Organizations and apps, as the authority manages them: an organization
// gets its first root key when it is created, and only its admins rotate
// keys. Apps are created and listed through the same caveat checks as any
// other access (creating one is action c on "app 0", spec §6.2).

// CreateOrganization creates an organization with the logged-in user as its
// admin, and its first root key.
func (s *Service) CreateOrganization(ctx context.Context, p *Principal, slug string) (store.Organization, error) {
	if !p.IsSession() {
		return store.Organization{}, forbidden("only a logged-in user can create organizations")
	}
	// A session confined to organizations (an Organization caveat) may
	// not create one: the access names organization 0, one not created yet.
	if err := s.clearCaveats(p, orgAccess(0, resset.ActionCreate)); err != nil {
		return store.Organization{}, err
	}
	o, err := s.cfg.Store.CreateOrganization(ctx, store.NewOrganization{Slug: slug, Admin: p.UserID, CreatedAt: s.cfg.Now()})
	switch {
	case errors.Is(err, store.ErrExists):
		return o, fault.Errorf(fault.Conflict, "organization %q already exists", slug)
	case errors.Is(err, store.ErrInvalid):
		return o, badRequest("%v", err)
	case err != nil:
		return o, fmt.Errorf("create organization: %w", err)
	}
	if _, err := s.cfg.Keyring.Rotate(ctx, o.ID); err != nil {
		return o, err
	}
	s.cfg.Logger.InfoContext(ctx, "organization created", "org", o.ID, "user", p.UserID)
	return o, nil
}

// EnsureRootKey gives an organization its first root key if it has none,
// for organizations created outside CreateOrganization (at signup).
func (s *Service) EnsureRootKey(ctx context.Context, orgID uint64) error {
	_, err := s.cfg.Store.ActiveRootKey(ctx, orgID)
	if errors.Is(err, store.ErrNotFound) {
		_, err = s.cfg.Keyring.Rotate(ctx, orgID)
	}
	return err
}

// Organization resolves a slug for a principal that may read it.
func (s *Service) Organization(ctx context.Context, p *Principal, slug string) (store.Organization, error) {
	o, err := s.cfg.Store.GetOrganizationBySlug(ctx, slug)
	if errors.Is(err, store.ErrNotFound) {
		return o, fault.Errorf(fault.NotFound, "no organization %q", slug)
	}
	if err != nil {
		return o, fmt.Errorf("organization: %w", err)
	}
	if err := s.member(ctx, p, o.ID); err != nil {
		// Do not tell outsiders which organizations exist. A membership
		// that could not be read is a failure to check, not an answer.
		if fault.CodeOf(err) == fault.Denied {
			return o, fault.Errorf(fault.NotFound, "no organization %q", slug)
		}
		return o, err
	}
	return o, nil
}

// clearCaveats clears an access against the principal's caveats alone, for
// operations that no role governs; a refusal is a 403 naming the caveat.
func (s *Service) clearCaveats(p *Principal, a *flyio.Access) error {
	if a.Time.IsZero() {
		a.Time = s.cfg.Now()
	}
	if err := p.Caveats.Clear(a); err != nil {
		return denied(err)
	}
	return nil
}

// adminOnly clears an access that only a logged-in admin may make: the
// caveats first (a refusal names the caveat), then the role. The accesses
// given are ones spec §6.5 leaves to admins (the keys feature, and
// changing the membership feature), so Allow's role check is the admin
// check; an access a member could make is a mistake here, refused rather
// than let through.
func (s *Service) adminOnly(ctx context.Context, p *Principal, a *flyio.Access, what string) error {
	if !p.IsSession() {
		return forbidden("only a logged-in admin can %s", what)
	}
	if a.RequiredRole() != flyio.RoleAdmin {
		return fmt.Errorf("adminOnly(%s): the access does not need an admin", what)
	}
	return s.Allow(ctx, p, a)
}

// member checks that the principal belongs to the organization: a named
// token of it, or a session of one of its members. It is enough to look
// names up; every operation then clears its own access.
func (s *Service) member(ctx context.Context, p *Principal, orgID uint64) error {
	if !p.IsSession() {
		if p.OrgID != orgID {
			return forbidden("token of organization %d cannot act on organization %d", p.OrgID, orgID)
		}
		return nil
	}
	_, err := s.membership(ctx, orgID, p.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return forbidden("user %d is not a member of organization %d", p.UserID, orgID)
	}
	if err != nil {
		return fmt.Errorf("membership: %w", err)
	}
	return nil
}

// Organizations lists what a principal belongs to: a session's user's
// organizations, or a named token's one organization.
func (s *Service) Organizations(ctx context.Context, p *Principal) ([]store.OrganizationRole, error) {
	if !p.IsSession() {
		o, err := s.cfg.Store.GetOrganization(ctx, p.OrgID)
		if err != nil {
			return nil, fmt.Errorf("organization: %w", err)
		}
		return []store.OrganizationRole{{Organization: o}}, nil
	}
	all, err := s.cfg.Store.ListUserOrganizations(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	// Only those the session's caveats let it read.
	out := all[:0]
	for _, o := range all {
		if s.clearCaveats(p, orgAccess(o.ID, resset.ActionRead)) == nil {
			out = append(out, o)
		}
	}
	return out, nil
}

// RotateKey gives the organization a new minting key; tokens minted with
// the old one keep verifying until it is retired. Admins only.
func (s *Service) RotateKey(ctx context.Context, p *Principal, orgID uint64) ([]byte, error) {
	if !p.IsSession() {
		return nil, forbidden("only a logged-in admin can rotate keys")
	}
	if err := s.adminOnly(ctx, p, keysAccess(orgID, resset.ActionCreate), "rotate its key"); err != nil {
		return nil, err
	}
	kid, err := s.cfg.Keyring.Rotate(ctx, orgID)
	if err != nil {
		return nil, err
	}
	s.cfg.Logger.InfoContext(ctx, "root key rotated", "org", orgID, "user", p.UserID)
	return kid, nil
}

// RetireKey stops a rotated key of the organization from verifying: the
// tokens it minted stop working. The active key cannot be retired (rotate
// first). Admins only.
func (s *Service) RetireKey(ctx context.Context, p *Principal, orgID uint64, kid []byte) error {
	if !p.IsSession() {
		return forbidden("only a logged-in admin can retire keys")
	}
	if err := s.adminOnly(ctx, p, keysAccess(orgID, resset.ActionDelete), "retire its keys"); err != nil {
		return err
	}
	k, err := s.cfg.Store.GetRootKey(ctx, kid)
	if errors.Is(err, store.ErrNotFound) || (err == nil && k.OrgID != orgID) {
		return fault.Errorf(fault.NotFound, "organization %d has no key %x", orgID, kid)
	}
	if err != nil {
		return fmt.Errorf("key: %w", err)
	}
	if k.State == store.KeyActive {
		return fault.Errorf(fault.Conflict, "key %x still mints the organization's tokens: rotate the key first", kid)
	}
	if err := s.cfg.Keyring.Retire(ctx, kid); err != nil {
		return err
	}
	// Forget every cached verification: retirements are rare, and the
	// cache does not index tokens by key. Other replicas stop using the
	// key within Keyring.CacheTTL and Config.CacheTTL.
	if s.cache != nil {
		s.cache.EvictAll()
	}
	s.cfg.Logger.InfoContext(ctx, "root key retired", "org", orgID, "user", p.UserID)
	return nil
}

// Keys lists a page of the organization's keys (ids, states, times; never
// key material) and the cursor of the next. Admins only.
func (s *Service) Keys(ctx context.Context, p *Principal, orgID uint64, page store.Page) ([]store.RootKey, string, error) {
	if !p.IsSession() {
		return nil, "", forbidden("only a logged-in admin can list keys")
	}
	if err := s.adminOnly(ctx, p, keysAccess(orgID, resset.ActionRead), "list its keys"); err != nil {
		return nil, "", err
	}
	ks, next, err := s.cfg.Store.ListRootKeys(ctx, orgID, page)
	if err != nil {
		return nil, "", pageErr("keys", err)
	}
	return ks, next, nil
}

// CreateApp creates an app: action c on a new app of the organization.
func (s *Service) CreateApp(ctx context.Context, p *Principal, orgID uint64, name string) (store.App, error) {
	var zero uint64
	if err := s.Allow(ctx, p, &flyio.Access{OrgID: &orgID, AppID: &zero, Action: resset.ActionCreate}); err != nil {
		return store.App{}, err
	}
	a, err := s.cfg.Store.CreateApp(ctx, store.NewApp{OrgID: orgID, Name: name, CreatedAt: s.cfg.Now()})
	switch {
	case errors.Is(err, store.ErrExists):
		return a, fault.Errorf(fault.Conflict, "app %q already exists", name)
	case errors.Is(err, store.ErrInvalid):
		return a, badRequest("%v", err)
	case err != nil:
		return a, fmt.Errorf("create app: %w", err)
	}
	return a, nil
}

// ListApps lists the apps that the principal may read of one page of the
// organization's apps, and the cursor of the next page: a page may hold
// fewer than page.Limit apps, or none, when the principal's caveats hide
// some.
func (s *Service) ListApps(ctx context.Context, p *Principal, orgID uint64, page store.Page) ([]store.App, string, error) {
	if err := s.member(ctx, p, orgID); err != nil {
		return nil, "", err
	}
	all, next, err := s.cfg.Store.ListApps(ctx, orgID, page)
	if err != nil {
		return nil, "", pageErr("list apps", err)
	}
	out := []store.App{}
	for _, a := range all {
		id := a.ID
		if s.Allow(ctx, p, &flyio.Access{OrgID: &orgID, AppID: &id, Action: resset.ActionRead}) == nil {
			out = append(out, a)
		}
	}
	return out, next, nil
}

// AppByName resolves an app of the organization by name, for a principal
// of the organization; the operation on the app clears its own access.
func (s *Service) AppByName(ctx context.Context, p *Principal, orgID uint64, name string) (store.App, error) {
	if err := s.member(ctx, p, orgID); err != nil {
		return store.App{}, err
	}
	a, err := s.cfg.Store.GetAppByName(ctx, orgID, name)
	if errors.Is(err, store.ErrNotFound) {
		return a, fault.Errorf(fault.NotFound, "no app %q", name)
	}
	if err != nil {
		return a, fmt.Errorf("app: %w", err)
	}
	return a, nil
}

// app returns the app if it belongs to the organization, 404 otherwise.
func (s *Service) app(ctx context.Context, orgID, appID uint64) (store.App, error) {
	a, err := s.cfg.Store.GetApp(ctx, appID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && a.OrgID != orgID) {
		return a, fault.Errorf(fault.NotFound, "no app %d in organization %d", appID, orgID)
	}
	if err != nil {
		return a, fmt.Errorf("app: %w", err)
	}
	return a, nil
}
