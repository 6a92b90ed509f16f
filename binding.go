package caveat

// Bindings (spec §4.7): a discharge's BindToParentToken caveats must each
// prefix the binding id (SHA-256) of one of its permission token's tails.
// Checking them is a lookup in a set of binding ids, never a scan of the
// tails per binding:
//
//   - a discharge's distinct binding values are kept as an antichain (no
//     value a prefix of another), so a token with n tails satisfies at most
//     n of them, and a discharge with more is refused at once;
//   - a permission token verified alone hashes its tails lazily from the
//     last (what honest discharges are bound to: one hash), and sorts the ids
//     for any further lookup;
//   - permission tokens verified together (a bundle with several for the
//     location) share one sorted index of every tail's id with a bit per
//     token, so that each binding value is looked up once for all of them
//     and each discharge's verdict for every token is one AND per value.

import (
	"bytes"
	"fmt"
	"slices"
)

// tailIDs is the binding ids of a permission token's tails: ids[from:],
// computed from the end, until a second lookup needs them all; then they are
// sorted, as a set.
type tailIDs struct {
	tails   [][tailSize]byte
	ids     [][tailSize]byte
	from    int
	sorted  bool
	lookups int
}

// antichain sorts distinct binding values and drops each that prefixes
// another: a tail whose id has the longer value as a prefix has the shorter
// one too. What is left is pairwise prefix-free, so no binding id matches
// two of them.
func antichain(bs [][]byte) [][]byte {
	slices.SortFunc(bs, bytes.Compare)
	bs = slices.CompactFunc(bs, bytes.Equal)
	out := bs[:0]
	for i, b := range bs {
		if i+1 < len(bs) && bytes.HasPrefix(bs[i+1], b) {
			continue
		}
		out = append(out, b)
	}
	return out
}

// binder checks a discharge's bindings against one permission token: in its
// own tailIDs, or, for a discharge with more than fewBindings values when
// several permission tokens are verified together, as its bit in the
// bindIndex of them all.
// fewBindings bounds the lookups a discharge costs per permission token in
// that token's own tailIDs: an honest discharge has one binding.
const fewBindings = 4

type binder struct {
	tid    *tailIDs
	index  *lazyIndex
	parent int
}

// boundCheck checks the bindings of discharge di against the parent's
// tails, once per parent and discharge.
func (v *verifier) boundCheck(b binder, di int32, dm *dischargeMemo) error {
	if b.index != nil && dm.nbinds > fewBindings {
		if !b.index.get().bound(di, dm, b.parent) {
			return fmt.Errorf("%w: a binding of the discharge names no tail of this token", ErrWrongParent)
		}
		return nil
	}
	tid := b.tid
	t := &v.tok[di]
	switch t.bound {
	case passed:
		return nil
	case failed:
		return fmt.Errorf("%w: %x", ErrWrongParent, tid.firstUnbound(dm))
	}
	if b := tid.firstUnbound(dm); b != nil {
		t.bound = failed
		return fmt.Errorf("%w: %x", ErrWrongParent, b)
	}
	t.bound = passed
	return nil
}

// firstUnbound returns a binding value of dm that no tail of the parent
// has, or nil when they all match.
func (tid *tailIDs) firstUnbound(dm *dischargeMemo) []byte {
	switch {
	case dm.tooLong != nil:
		return dm.tooLong
	case dm.nbinds == 0:
		return nil
	case dm.nbinds == 1:
		if !tid.has(dm.bind1) {
			return dm.bind1
		}
		return nil
	case dm.nbinds > len(tid.tails):
		// The values are prefix-free, so each tail matches at most one.
		return dm.binds[len(dm.binds)-1]
	}
	for _, b := range dm.binds {
		if !tid.has(b) {
			return b
		}
	}
	return nil
}

// has reports whether b prefixes the binding id of one of the tails. The
// first lookup hashes from the last tail back, since a discharge is most
// often bound to the token as it was last extended; a later one computes the
// remaining ids, sorts them once, and searches.
func (tid *tailIDs) has(b []byte) bool {
	tid.lookups++
	if tid.ids == nil {
		tid.ids = make([][tailSize]byte, len(tid.tails))
		tid.from = len(tid.tails)
	}
	if tid.lookups == 1 && !tid.sorted {
		for i := len(tid.tails) - 1; i >= 0; i-- {
			if i < tid.from {
				tid.ids[i] = bindingID(tid.tails[i])
				tid.from = i
			}
			if bytes.HasPrefix(tid.ids[i][:], b) {
				return true
			}
		}
		return false
	}
	if !tid.sorted {
		for tid.from > 0 {
			tid.from--
			tid.ids[tid.from] = bindingID(tid.tails[tid.from])
		}
		slices.SortFunc(tid.ids, func(x, y [tailSize]byte) int { return bytes.Compare(x[:], y[:]) })
		tid.sorted = true
	}
	// Ids with prefix b sort at or after b and before any other id above b,
	// so the first id not below b is the only candidate.
	i, _ := slices.BinarySearchFunc(tid.ids, b, func(id [tailSize]byte, b []byte) int {
		return bytes.Compare(id[:], b)
	})
	return i < len(tid.ids) && bytes.HasPrefix(tid.ids[i][:], b)
}

// bindIndex answers, for permission tokens verified together, which of
// them a discharge is bound to.
type bindIndex struct {
	words int
	ids   [][tailSize]byte // sorted, distinct
	masks []uint64         // words per id: the tokens with that id
	// vmask memoises, per binding value, the tokens with an id it prefixes;
	// dmask, per bundle token as a discharge, the tokens all its bindings
	// name.
	vmask map[string][]uint64
	dmask map[int32][]uint64
}

// lazyIndex builds the bindIndex of walked tokens on first use.
type lazyIndex struct {
	ws    []walked
	errs  []error // the tokens refused already are left out
	index *bindIndex
}

func (l *lazyIndex) get() *bindIndex {
	if l.index == nil {
		l.index = newBindIndex(l.ws, l.errs)
	}
	return l.index
}

func newBindIndex(ws []walked, errs []error) *bindIndex {
	x := &bindIndex{words: (len(ws) + 63) / 64, vmask: map[string][]uint64{}, dmask: map[int32][]uint64{}}
	type entry struct {
		id  [tailSize]byte
		tok int32
	}
	n := 0
	for _, w := range ws {
		n += len(w.tails)
	}
	entries := make([]entry, 0, n)
	for p := range ws {
		if errs[p] != nil {
			continue
		}
		// The ids are kept for the token's own lookups (a token's ids are
		// a set: their order does not matter to either).
		w := &ws[p]
		if len(w.ids) != len(w.tails) {
			w.ids = make([][tailSize]byte, len(w.tails))
			for k := range w.tails {
				w.ids[k] = bindingID(w.tails[k])
			}
		}
		for _, id := range w.ids {
			entries = append(entries, entry{id: id, tok: int32(p)})
		}
	}
	slices.SortFunc(entries, func(a, b entry) int { return bytes.Compare(a.id[:], b.id[:]) })
	x.ids = make([][tailSize]byte, 0, len(entries))
	x.masks = make([]uint64, 0, len(entries)*x.words)
	for i, e := range entries {
		if i == 0 || e.id != entries[i-1].id {
			x.ids = append(x.ids, e.id)
			x.masks = x.masks[:len(x.masks)+x.words]
		}
		x.masks[len(x.masks)-x.words+int(e.tok)/64] |= 1 << (e.tok % 64)
	}
	return x
}

// bound reports whether every binding of discharge di names a tail of
// token p (its position among the walked tokens).
func (x *bindIndex) bound(di int32, dm *dischargeMemo, p int) bool {
	m, ok := x.dmask[di]
	if !ok {
		m = make([]uint64, x.words)
		if dm.tooLong == nil {
			for i := range m {
				m[i] = ^uint64(0)
			}
			values := dm.binds
			if dm.nbinds == 1 {
				values = [][]byte{dm.bind1}
			}
			for _, v := range values {
				vm := x.valueMask(v)
				for i := range m {
					m[i] &= vm[i]
				}
			}
		}
		x.dmask[di] = m
	}
	return m[p/64]&(1<<(p%64)) != 0
}

// valueMask returns the tokens with a tail whose id has prefix v: the ids
// from the first not below v, while they have it. Distinct values of one
// length cover disjoint runs of ids, so all values together read each id
// at most once per length.
func (x *bindIndex) valueMask(v []byte) []uint64 {
	if m, ok := x.vmask[string(v)]; ok {
		return m
	}
	m := make([]uint64, x.words)
	i, _ := slices.BinarySearchFunc(x.ids, v, func(id [tailSize]byte, v []byte) int { return bytes.Compare(id[:], v) })
	for ; i < len(x.ids) && bytes.HasPrefix(x.ids[i][:], v); i++ {
		for w, bits := range x.masks[i*x.words : (i+1)*x.words] {
			m[w] |= bits
		}
	}
	x.vmask[string(v)] = m
	return m
}
