package authority

// The verification cache: what Authenticate keeps of verified bundles, how
// much memory that may take, and when it may be served.
//
// A cached verification is served only while the revocation feed is known
// to be current (Config.RevocationSettle): Run confirms the feed with every
// read that reaches its end, recording when that read began, so that every
// revocation committed before that instant has been applied. Past the
// window the feed may be down (LISTEN and polling failing) and a
// revocation committed through another replica unseen, so the bundle is
// verified afresh against the store; if the store fails too, the answer is
// 503, never an allow. A remembered refusal of a revoked token is served
// regardless: a revocation is final.
//
// Both caches are bounded in entries and in bytes (Config.CacheSize and
// Config.CacheBytes), and Run sweeps their expired entries. A cached
// principal holds a compact copy of its verified caveats, so that its size
// is what the cache counts: the caveats parsed from the bundle alias the
// whole decoded bundle, which can be hundreds of kilobytes of third-party
// caveats and tickets that verification consumed.

import (
	"context"
	"time"
	"unsafe"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/internal/tokencache"
)

// principalOverhead is what a cached Principal holds besides its caveats
// and strings: the Principal, its store.Token and the slice headers.
const principalOverhead = 256

// revokedOverhead is what a remembered refusal holds besides its message.
const revokedOverhead = 96

// maxTouched bounds the token ids whose last use is remembered (to throttle
// the registry's last-used writes); each costs about EntryOverhead plus
// the id.
const maxTouched = 100_000

// cacheLimits are the bounds of each cache.
func (cfg *Config) cacheLimits() tokencache.Limits {
	return tokencache.Limits{Entries: cfg.CacheSize, Bytes: cfg.CacheBytes}
}

// verifyFresh verifies a bundle against the store (see verifyBundle). A
// store failure is an Unavailable *fault.Error: the token cannot be checked now,
// and is not allowed. The principal's caveats (and a session's
// attenuations) are compacted for the cache, so that it keeps nothing of
// the bundle alive.
func (s *Service) verifyFresh(ctx context.Context, header string) (*Principal, error) {
	p, err := s.verifyBundle(ctx, header)
	if err != nil {
		if _, ok := fault.As(err); ok {
			return nil, err
		}
		s.cfg.Logger.WarnContext(ctx, "cannot check a token: the store failed", "err", err)
		return nil, &fault.Error{Code: fault.Unavailable, Err: err,
			Message: "cannot check the token now: the token registry is unavailable; retry"}
	}
	p.Caveats = compactCaveats(p.Caveats)
	if p.Attenuations != nil {
		p.Attenuations = compactCaveats(p.Attenuations)
	}
	return p, nil
}

// compactCaveats copies a caveat set into one allocation of its bodies'
// size, so that keeping it keeps nothing else alive.
func compactCaveats(cs caveat.CaveatSet) caveat.CaveatSet {
	n := 0
	for _, c := range cs {
		n += len(c.Body)
	}
	buf := make([]byte, 0, n)
	out := make(caveat.CaveatSet, len(cs))
	for i, c := range cs {
		start := len(buf)
		buf = append(buf, c.Body...)
		out[i] = caveat.RawCaveat{Type: c.Type, Body: buf[start:len(buf):len(buf)]}
	}
	return out
}

// size estimates the bytes a cached principal keeps alive: its caveats
// and a session's attenuations as compactCaveats lays them out (two
// allocations each), its strings, and the rest.
func (p *Principal) size() int {
	bodies := 0
	for _, c := range p.Caveats {
		bodies += len(c.Body)
	}
	n := principalOverhead + len(p.SessionID) + len(p.permissionToken) + allocSize(cap(p.Caveats)*int(unsafe.Sizeof(caveat.RawCaveat{}))) + allocSize(bodies)
	if p.Attenuations != nil {
		attenuated := 0
		for _, c := range p.Attenuations {
			attenuated += len(c.Body)
		}
		n += allocSize(cap(p.Attenuations)*int(unsafe.Sizeof(caveat.RawCaveat{}))) + allocSize(attenuated)
	}
	if p.Token != nil {
		n += len(p.Token.ID) + len(p.Token.Name) + len(p.Token.Profile)
	}
	return n
}

// allocSize bounds what the Go allocator takes for an allocation of n
// bytes: small objects are rounded up to a size class, which wastes at
// most an eighth, and large ones (over 32 KiB) to whole 8 KiB pages.
func allocSize(n int) int {
	if n > 32<<10 {
		return (n + 8<<10 - 1) &^ (8<<10 - 1)
	}
	return n + n/8 + 16
}

// sweep drops the caches' expired entries.
func (s *Service) sweep(now time.Time) {
	s.cache.Sweep(now)
	s.revoked.Sweep(now)
	s.touched.Sweep(now)
}

// touch records a use of a named token, at most once per touchEvery per
// token and replica.
func (s *Service) touch(ctx context.Context, id string, now time.Time) {
	k := tokencache.KeyOf(id)
	if _, ok := s.touched.Get(k, now); ok {
		return
	}
	s.touched.Put(k, tokencache.Item[struct{}]{Token: id, Expires: now.Add(touchEvery)}, now, s.touched.Generation())
	if err := s.cfg.Store.TouchToken(ctx, id, now); err != nil {
		s.cfg.Logger.WarnContext(ctx, "recording token use", "token", id, "err", err)
	}
}
