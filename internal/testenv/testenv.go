// Package testenv is what tests need of their environment. It decides
// what a test does when a real component it needs (PostgreSQL, Redis, the
// go command) is missing on the machine: on a developer's machine it is
// skipped, saying how to get the component; where CAVEAT_TEST_REQUIRE_ALL
// is set (.ci/run sets it), it fails, so that CI can never pass by
// skipping. And it waits for conditions (Eventually, WaitFor), so that no
// test sleeps for a fixed time.
package testenv

import (
	"os"
	"testing"
)

// RequireAllVar names the variable that turns missing components into
// failures.
const RequireAllVar = "CAVEAT_TEST_REQUIRE_ALL"

// Missing stops the test because a component is missing: t.Skip, or
// t.Fatal when RequireAllVar is set. why says what is missing and how to
// provide it.
func Missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv(RequireAllVar) != "" {
		t.Fatalf("%s (%s is set: every test must run)", why, RequireAllVar)
	}
	t.Skip(why)
}
