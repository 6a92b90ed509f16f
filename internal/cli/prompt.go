package cli

// Interactive input, as gh and flyctl do it: on a terminal, auth login and
// signup ask for what was not given (the password without echo); anywhere
// else they need the flags, so that scripts never hang on a prompt.

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/term"
)

// terminal returns stdin's file descriptor when stdin is a terminal.
func (a *app) terminal() (int, bool) {
	f, ok := a.stdin.(*os.File)
	if !ok {
		return 0, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

// promptLine asks for one line on the terminal (echoed). It reads one
// byte at a time: a buffered reader could take input meant for the next
// prompt, which reads the descriptor itself.
func (a *app) promptLine(label string) (string, error) {
	fmt.Fprintf(a.stderr, "%s: ", label)
	a.stdinUse = label
	var line []byte
	var c [1]byte
	for {
		n, err := a.stdin.Read(c[:])
		if n == 1 && c[0] == '\n' {
			break
		}
		if n == 1 {
			line = append(line, c[0])
			continue
		}
		if err != nil {
			if len(line) == 0 {
				return "", failf("reading %s from the terminal: %v", strings.ToLower(label), err)
			}
			break
		}
	}
	return strings.TrimRight(string(line), "\r"), nil
}

// promptPassword asks for a password on the terminal, without echo.
func (a *app) promptPassword(fd int, label string) (string, error) {
	fmt.Fprintf(a.stderr, "%s: ", label)
	pw, err := term.ReadPassword(fd)
	fmt.Fprintln(a.stderr)
	if err != nil {
		return "", failf("reading the password from the terminal: %v", err)
	}
	if len(pw) == 0 {
		return "", failf("the password is empty")
	}
	a.stdinUse = "the password"
	return string(pw), nil
}

// openBrowser opens url in the user's browser where there is one to open:
// on macOS and Windows, and on other systems with a graphical session
// ($DISPLAY or $WAYLAND_DISPLAY). $BROWSER names a program to use instead;
// CAVEAT_NO_BROWSER=1 never opens one. It reports whether it started one.
func (a *app) openBrowser(url string) bool {
	if a.env("CAVEAT_NO_BROWSER") != "" {
		return false
	}
	var cmd *exec.Cmd
	switch b := a.env("BROWSER"); {
	case b != "":
		cmd = exec.Command(b, url)
	case runtime.GOOS == "darwin":
		cmd = exec.Command("open", url)
	case runtime.GOOS == "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	case a.env("DISPLAY") != "" || a.env("WAYLAND_DISPLAY") != "":
		cmd = exec.Command("xdg-open", url)
	default:
		return false
	}
	if err := cmd.Start(); err != nil {
		return false
	}
	go cmd.Wait() // reap it; the browser outlives it or not, either is fine
	return true
}
