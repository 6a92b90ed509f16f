//go:build race

package caveat

// raceBuild is set in builds with the race detector. Its instrumentation
// keeps the compiler from growing a slice in place in crypto/sha256's
// AppendBinary, which then allocates on every hash: such builds hash the
// portable way (paddedOK is false), which does not.
const raceBuild = true
