package authority

// Branch revocation. Every attenuation step of a token has its own tail,
// and so its own binding id; a branch is named by one of them. Revoking a
// branch refuses the token as it was at that step and everything
// attenuated from it since, and nothing else: its ancestors' chains stop
// before that tail, and its siblings' chains part from it before it.
//
// Two ways in:
//
//   - a named token revokes the branch it is (POST /v1/tokens/revoke): the
//     binding id of its own final tail, never an ancestor's, so that a
//     narrowed child cannot take its parent down with it;
//   - a logged-in admin of the token's organization, or the user who
//     created the token, revokes any branch of it by presenting that
//     branch (POST /v1/tokens/revoke-branch). The branch's chain is
//     verified under the organization's key before anything is recorded:
//     an id taken from an unverified token could name anyone's branch.
//
// A token has at most store.MaxRevokedBranches revoked branches; past that
// the answer is 409 and the way out is revoking the token by id.

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/store"
)

// BranchRevocation is the outcome of revoking a branch.
type BranchRevocation struct {
	TokenID string
	Branch  store.BranchID
	// Revoked is false when the branch was already revoked.
	Revoked bool
}

// branchOf is the branch a token is: the binding id of its final tail.
func branchOf(m *caveat.Macaroon) store.BranchID {
	return store.BranchID(caveat.BindingID(m))
}

// RevokeSelf revokes the branch of the principal's own named token, and
// nothing above it: the token's ancestors and their other attenuations
// keep working.
func (s *Service) RevokeSelf(ctx context.Context, p *Principal) (BranchRevocation, error) {
	if p.IsSession() || p.Token == nil {
		return BranchRevocation{}, badRequest("this is a session; log out to end it")
	}
	return s.recordBranch(ctx, p, *p.Token, p.Branch, 0)
}

// RevokeBranch revokes the branch that header's permission token is, for
// a logged-in admin of the token's organization or the user who created
// it. header is a bundle (with the branch's discharges, if it has
// third-party caveats) holding exactly one permission token for this
// authority; its signatures are verified before anything is recorded.
func (s *Service) RevokeBranch(ctx context.Context, p *Principal, header string) (BranchRevocation, error) {
	if !p.IsSession() {
		return BranchRevocation{}, forbidden("only a logged-in user can revoke a branch of another token; a token revokes its own branch with POST /v1/tokens/revoke")
	}
	t, branch, err := s.verifyBranch(ctx, header)
	if err != nil {
		return BranchRevocation{}, err
	}
	if err := s.mayRevoke(ctx, p, t); err != nil {
		return BranchRevocation{}, err
	}
	return s.recordBranch(ctx, p, t, branch, p.UserID)
}

// verifyBranch verifies the branch token of a revocation and returns its
// registry record and its branch. Its branches need not be unrevoked: a
// revoked branch is revoked again, idempotently.
func (s *Service) verifyBranch(ctx context.Context, header string) (store.Token, store.BranchID, error) {
	invalid := func(format string, args ...any) error {
		return fault.Errorf(fault.Invalid, "branch token: "+format, args...)
	}
	b, err := caveat.ParseBundle(header)
	if err != nil {
		return store.Token{}, store.BranchID{}, invalid("malformed: %v", err)
	}
	n := 0
	for i := range b.Tokens {
		if b.Tokens[i].Location == s.cfg.Location && !b.IsDischarge(i) {
			n++
		}
	}
	if n > 1 {
		return store.Token{}, store.BranchID{}, invalid("the bundle holds %d permission tokens for %s; send the one branch to revoke", n, s.cfg.Location)
	}
	v, err := b.Verify(s.cfg.Location, s.cfg.Keyring.KeyFunc(ctx), s.trusted)
	var keyOrg uint64
	if err == nil {
		keyOrg, err = s.keyOrg(ctx, v.KID)
	}
	if err != nil {
		if !isTokenFault(err) {
			return store.Token{}, store.BranchID{}, fmt.Errorf("verify branch token: %w", err)
		}
		return store.Token{}, store.BranchID{}, invalid("invalid: %v", err)
	}
	m := &b.Tokens[v.Token]
	if s.cfg.Keyring.IsSessionKID(m.Nonce.KID) {
		return store.Token{}, store.BranchID{}, invalid("a session has no branches to revoke; log out to end it")
	}
	id := m.Nonce.UUID().String()
	t, err := s.cfg.Store.GetToken(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Token{}, store.BranchID{}, invalid("unknown token %s", id)
	}
	if err != nil {
		return store.Token{}, store.BranchID{}, fmt.Errorf("token %s: %w", id, err)
	}
	if t.OrgID != keyOrg {
		return store.Token{}, store.BranchID{}, invalid("token %s is not signed by its organization's key", id)
	}
	return t, branchOf(m), nil
}

// isTokenFault reports whether a verification error is the token's fault
// (refused as invalid), rather than the store's (an internal failure).
func isTokenFault(err error) bool {
	return errors.Is(err, caveat.ErrInvalid) || errors.Is(err, caveat.ErrMalformed) ||
		errors.Is(err, caveat.ErrNoPermissionToken) || errors.Is(err, caveat.ErrProof)
}

// recordBranch records a branch of t revoked by user by (0: the branch
// itself) and evicts the token's cached verifications here; the
// revocation feed evicts them on the other replicas.
func (s *Service) recordBranch(ctx context.Context, p *Principal, t store.Token, branch store.BranchID, by uint64) (BranchRevocation, error) {
	revoked, err := s.cfg.Store.RevokeBranch(ctx, store.RevokedBranch{TokenID: t.ID, Branch: branch, RevokedBy: by, RevokedAt: s.cfg.Now()})
	if errors.Is(err, store.ErrLimit) {
		return BranchRevocation{}, fault.Errorf(fault.Conflict,
			"token %s already has %d revoked branches, the most a token may have; revoke the whole token by id instead",
			t.ID, store.MaxRevokedBranches)
	}
	if err != nil {
		return BranchRevocation{}, fmt.Errorf("revoke branch: %w", err)
	}
	if s.cache != nil {
		s.cache.EvictToken(t.ID)
	}
	if revoked {
		s.cfg.Logger.InfoContext(ctx, "token branch revoked", "token", t.ID, "branch", branch.String(),
			"org", t.OrgID, "by", by, "self", by == 0, "user", p.UserID)
	}
	return BranchRevocation{TokenID: t.ID, Branch: branch, Revoked: revoked}, nil
}

// maxRegistryReads bounds the permission tokens of one bundle whose
// registry records are read: a record is read before a token's chain is
// walked (for its revoked branches), so without a bound a bundle of forged
// tokens under a known key id would cost one database read each. An
// honest bundle has one permission token for this authority.
const maxRegistryReads = 4

// errTooManyTokens refuses a bundle past maxRegistryReads.
var errTooManyTokens = errors.New("too many permission tokens")

// registry holds the registry records read during one verification, by
// token id, with their revoked branches; the checks after verification
// reuse them rather than reading again.
type registry struct {
	s       *Service
	ctx     context.Context
	entries map[string]*registryEntry
}

type registryEntry struct {
	t        store.Token
	found    bool
	branches caveat.BranchSet
}

func (s *Service) registryReads(ctx context.Context) *registry {
	return &registry{s: s, ctx: ctx, entries: map[string]*registryEntry{}}
}

// revokedBranches is the caveat.VerifyOptions callback: the revoked
// branches of a named token, read with its record. Sessions have none
// (they end by logout), and neither has a token without a record, which
// is refused once verified.
func (r *registry) revokedBranches(m *caveat.Macaroon) (caveat.BranchSet, error) {
	if r.s.cfg.Keyring.IsSessionKID(m.Nonce.KID) {
		return nil, nil
	}
	id := m.Nonce.UUID().String()
	if e, ok := r.entries[id]; ok {
		return e.branches, nil
	}
	if len(r.entries) >= maxRegistryReads {
		return nil, errTooManyTokens
	}
	e := &registryEntry{}
	r.entries[id] = e
	t, err := r.s.cfg.Store.GetToken(r.ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		delete(r.entries, id)
		return nil, fmt.Errorf("token %s: %w", id, err)
	}
	e.t, e.found = t, true
	if t.RevokedBranches == 0 {
		return nil, nil // the usual case: one read, as before branches
	}
	if set, ok := r.s.branchSets.get(id, t.RevokedBranches); ok {
		e.branches = set
		return set, nil
	}
	bs, err := r.s.cfg.Store.ListRevokedBranches(r.ctx, id)
	if err != nil {
		delete(r.entries, id)
		return nil, fmt.Errorf("revoked branches of token %s: %w", id, err)
	}
	e.branches = make(caveat.BranchSet, len(bs))
	for _, b := range bs {
		e.branches[caveat.BranchID(b.Branch)] = struct{}{}
	}
	r.s.branchSets.put(id, e.branches)
	return e.branches, nil
}

// maxCachedBranches bounds the branch ids that branchSetCache holds over
// all tokens (about 40 bytes each with the map's overhead, so under 3 MB).
const maxCachedBranches = 64 << 10

// branchSetCache keeps the revoked-branch sets of tokens between
// verifications, so that a token with many revoked branches costs one
// registry read per verification, as any other does, rather than two and
// the building of its set. It needs no revocation feed to stay current: a
// token's revoked branches are never removed, and every verification
// reads the token's count afresh with its record, so a cached set of that
// size is the whole set, and any other size is reread. The sets are shared
// and never modified once cached.
type branchSetCache struct {
	mu   sync.Mutex
	sets map[string]caveat.BranchSet
	held int // branch ids in sets
}

// get returns the token's cached set if it has exactly count branches.
func (c *branchSetCache) get(id string, count int) (caveat.BranchSet, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	set, ok := c.sets[id]
	return set, ok && len(set) == count
}

// put caches a token's set, emptying the cache first when it would hold
// more than maxCachedBranches.
func (c *branchSetCache) put(id string, set caveat.BranchSet) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sets == nil {
		c.sets = map[string]caveat.BranchSet{}
	}
	if old, ok := c.sets[id]; ok {
		c.held -= len(old)
		delete(c.sets, id)
	}
	if c.held+len(set) > maxCachedBranches {
		clear(c.sets)
		c.held = 0
	}
	c.sets[id] = set
	c.held += len(set)
}

// refusal turns the verification errors of branch revocation into their
// 401s; it returns nil for any other error.
func (r *registry) refusal(err error) error {
	switch {
	case errors.Is(err, caveat.ErrBranchRevoked):
		// Final, like a token's revocation: errRevoked lets Authenticate
		// remember the refusal.
		return &fault.Error{Code: fault.Unauthenticated, Err: errRevoked,
			Message: fmt.Sprintf("invalid token: %v", err)}
	case errors.Is(err, errTooManyTokens):
		return unauthenticated("invalid token: the bundle holds more than %d permission tokens for %s; send the one to verify",
			maxRegistryReads, r.s.cfg.Location)
	}
	return nil
}

// record returns the verified token's registry record, read during
// verification (or now, if it was not). A token without a record is
// refused: every token the authority mints is registered.
func (r *registry) record(id string) (store.Token, error) {
	e, ok := r.entries[id]
	if !ok {
		t, err := r.s.cfg.Store.GetToken(r.ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return store.Token{}, unauthenticated("unknown token %s", id)
		}
		if err != nil {
			return store.Token{}, fmt.Errorf("token %s: %w", id, err)
		}
		return t, nil
	}
	if !e.found {
		return store.Token{}, unauthenticated("unknown token %s", id)
	}
	return e.t, nil
}
