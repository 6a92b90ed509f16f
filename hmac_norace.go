//go:build !race

package caveat

// raceBuild is set in builds with the race detector (see hmac_race.go).
const raceBuild = false
