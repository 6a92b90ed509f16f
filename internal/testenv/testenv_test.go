package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMissing runs a test that calls Missing in a child process, with and
// without RequireAllVar, and checks it skips, then fails.
func TestMissing(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") != "" {
		Missing(t, "frobnicator is not installed")
		return
	}
	for _, tc := range []struct {
		require string
		fails   bool
	}{{"", false}, {"1", true}} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestMissing$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", RequireAllVar+"="+tc.require)
		out, err := cmd.CombinedOutput()
		if (err != nil) != tc.fails || !strings.Contains(string(out), "frobnicator is not installed") {
			t.Errorf("%s=%q: err %v, output:\n%s", RequireAllVar, tc.require, err, out)
		}
		if !tc.fails && !strings.Contains(string(out), "SKIP") {
			t.Errorf("not skipped without %s:\n%s", RequireAllVar, out)
		}
	}
}
