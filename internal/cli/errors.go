package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

// Exit statuses.
const (
	exitFailure = 1
	exitUsage   = 2
)

// cliError is an error to report to the user: a message for
// "caveat: error: …", hints for "caveat: hint: …" and the exit status.
// Messages never include a token, a key or a secret.
type cliError struct {
	code  int
	msg   string
	hints []string
}

func (e *cliError) Error() string { return e.msg }

// withHint appends a hint and returns e.
func (e *cliError) withHint(format string, args ...any) *cliError {
	e.hints = append(e.hints, fmt.Sprintf(format, args...))
	return e
}

// withFirstHint puts a hint before the others: the specific fix before the
// pointer to the help.
func (e *cliError) withFirstHint(format string, args ...any) *cliError {
	e.hints = append([]string{fmt.Sprintf(format, args...)}, e.hints...)
	return e
}

// failf returns a failure (exit status 1).
func failf(format string, args ...any) *cliError {
	return &cliError{code: exitFailure, msg: fmt.Sprintf(format, args...)}
}

// usageError returns a usage error (exit status 2) with a hint pointing at
// the command's help.
func usageError(cmd *cobra.Command, format string, args ...any) *cliError {
	e := &cliError{code: exitUsage, msg: fmt.Sprintf(format, args...)}
	path := "caveat"
	if cmd != nil {
		path = cmd.CommandPath()
	}
	return e.withHint("run '%s --help' for usage", path)
}
