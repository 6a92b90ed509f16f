package loadtest_test

import (
	"os/exec"
	"syscall"
)

// dieWithTest has the kernel kill a child process when the test process
// dies (a timeout's panic, a kill), so that no replica outlives it.
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
