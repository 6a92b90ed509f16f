package caveat

import "github.com/caveatdev/caveat/internal/msgpack"

// Limits on untrusted input. Every decoder checks them and returns an error
// wrapping ErrLimit; none of them is reachable by a token caveat mints itself
// in normal use. They bound memory and time spent on hostile input.
const (
	// MaxTokenSize bounds the encoded size of one macaroon, in bytes.
	MaxTokenSize = 64 << 10
	// MaxHeaderSize bounds an Authorization header or bundle string, in bytes.
	MaxHeaderSize = 256 << 10
	// MaxBundleTokens bounds the number of entries in one bundle.
	MaxBundleTokens = 64
	// MaxCaveats bounds the number of caveats in one caveat set, nested sets
	// included separately.
	MaxCaveats = 1024
	// MaxDepth bounds the nesting of MessagePack arrays and maps in a caveat
	// body, and so of caveat sets inside caveats (IfPresent in IfPresent).
	MaxDepth = msgpack.MaxDepth
)
