//go:build !caveat_nounsafe

package caveat

import "unsafe"

// aliasString returns b as a string that shares b's memory, so that a
// decoded token's Location (and a 3P caveat's location, looked up among the
// trusted third parties) costs no copy and no allocation. b must never be
// written again: it is always part of a token's bytes, which nothing writes
// after decoding (Decode and Parse decode a private copy).
//
// This is the package's only use of unsafe. BENCHMARKS.md ("What unsafe
// buys") measures it against alias_copy.go, built with -tags
// caveat_nounsafe, which copies instead.
func aliasString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
