//go:build !linux

package loadtest_test

import "os/exec"

// dieWithTest does nothing where the kernel cannot tie a child's life to
// its parent's: the tests' cleanups stop the replicas.
func dieWithTest(cmd *exec.Cmd) {}
