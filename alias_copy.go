//go:build caveat_nounsafe

package caveat

// aliasString copies b into a new string: the build without unsafe, to
// measure what alias_unsafe.go buys.
func aliasString(b []byte) string { return string(b) }
