package cli

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/caveatdev/caveat/internal/fake"
)

// openPTY opens a pseudo-terminal pair: what a user types goes into the
// master, and the program reads the slave as its stdin.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// syncBuffer is stderr, written by Main and read by the test.
type syncBuffer struct{ fake.Buffer }

func (s *syncBuffer) waitFor(t *testing.T, text string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q on stderr: %q", text, s.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLoginPrompts: on a terminal, auth login asks for the email and the
// password, and the password is not echoed. The server is not reachable
// here, so the login itself fails after the prompts; what is tested is
// that the prompts read what was typed.
func TestLoginPrompts(t *testing.T) {
	master, slave := openPTY(t)
	stderr := &syncBuffer{}
	var stdout bytes.Buffer
	env := map[string]string{"CAVEAT_CONFIG_DIR": t.TempDir(), "CAVEAT_API_URL": "http://127.0.0.1:1"}
	done := make(chan int, 1)
	go func() {
		done <- Main([]string{"auth", "login"}, slave, &stdout, stderr, func(k string) string { return env[k] })
	}()
	stderr.waitFor(t, "Email: ")
	master.WriteString("ada@example.com\n")
	stderr.waitFor(t, "Password: ")
	master.WriteString("s3cret-pass\n")
	select {
	case code := <-done:
		if code == 0 {
			t.Fatal("login succeeded without a server")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("login did not return")
	}
	if !strings.Contains(stderr.String(), "caveat: error: login:") {
		t.Errorf("after the prompts, the login was not attempted: %q", stderr.String())
	}
	// What the terminal showed: the email echoed, the password not.
	master.SetReadDeadline(time.Now().Add(time.Second))
	shown := make([]byte, 4096)
	n, _ := master.Read(shown)
	if strings.Contains(string(shown[:n]), "s3cret-pass") {
		t.Errorf("the password was echoed: %q", shown[:n])
	}
	if !strings.Contains(string(shown[:n]), "ada@example.com") {
		t.Errorf("the email was not echoed: %q", shown[:n])
	}
}

// TestNoPromptWithoutTerminal: scripts get an error, never a prompt.
func TestNoPromptWithoutTerminal(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Main([]string{"auth", "login"}, strings.NewReader(""), &stdout, &stderr, func(string) string { return "" })
	if code != exitUsage || !strings.Contains(stderr.String(), "--email is required") || strings.Contains(stderr.String(), "Email:") {
		t.Fatalf("login without a terminal: %d %q", code, stderr.String())
	}
	stderr.Reset()
	code = Main([]string{"auth", "login", "--email", "ada@example.com"}, strings.NewReader(""), &stdout, &stderr, func(string) string { return "" })
	if code != exitUsage || !strings.Contains(stderr.String(), "--password-stdin") {
		t.Fatalf("login without a password or a terminal: %d %q", code, stderr.String())
	}
}
