package machines

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/resset"
	"github.com/caveatdev/caveat/store"
)

// Wait bounds.
const (
	DefaultWaitTimeout = 60 * time.Second
	MaxWaitTimeout     = 60 * time.Second
)

// WaitOptions are the query parameters of wait.
type WaitOptions struct {
	// State is the state to wait for; started when empty.
	State store.MachineState
	// InstanceID, when set, waits for that version of the machine to be
	// in State.
	InstanceID string
	// Timeout is at most MaxWaitTimeout; DefaultWaitTimeout when 0.
	Timeout time.Duration
}

// Wait returns when the machine is in opt.State: action r. It answers 408
// when the timeout passes first, and 412 when the machine is destroyed
// (it will never be in another state). It wakes when this process changes
// the machine, when a transition is due to end, and every
// Config.WaitPoll to see other replicas' changes.
func (s *Service) Wait(ctx context.Context, t *Target, opt WaitOptions) error {
	if err := s.require(ctx, t, resset.ActionRead); err != nil {
		return err
	}
	app, id := t.App, t.ID
	if opt.State == "" {
		opt.State = store.MachineStarted
	}
	if !opt.State.Valid() {
		return badRequest("state %q: want one of %s", opt.State, stateList())
	}
	if opt.Timeout == 0 {
		opt.Timeout = DefaultWaitTimeout
	}
	if opt.Timeout < 0 || opt.Timeout > MaxWaitTimeout {
		return badRequest("timeout %s: want at most %s", opt.Timeout, MaxWaitTimeout)
	}
	timeout := time.NewTimer(opt.Timeout)
	defer timeout.Stop()
	for {
		changed, release := s.notify.watch(id)
		m, err := s.load(ctx, app, id)
		if err != nil {
			release()
			return err
		}
		if m.State == opt.State && (opt.InstanceID == "" || opt.InstanceID == m.InstanceID) {
			release()
			return nil
		}
		if m.State == store.MachineDestroyed {
			release()
			return fault.Errorf(fault.FailedPrecondition, "machine %s is destroyed: it will not be %s", id, opt.State)
		}
		sleep := s.cfg.WaitPoll
		if m.Next != "" {
			sleep = min(sleep, max(m.NextAt.Sub(s.now()), time.Millisecond))
		}
		poll := time.NewTimer(sleep)
		select {
		case <-changed:
		case <-poll.C:
		case <-timeout.C:
			poll.Stop()
			release()
			return fault.Errorf(fault.Timeout, "machine %s did not become %s within %s: it is %s",
				id, opt.State, opt.Timeout, describeState(m))
		case <-ctx.Done():
			poll.Stop()
			release()
			return ctx.Err()
		}
		poll.Stop()
		release()
	}
}

func describeState(m store.Machine) string {
	if m.Next == "" {
		return string(m.State)
	}
	return fmt.Sprintf("%s (to be %s)", m.State, m.Next)
}

func stateList() string {
	names := make([]string, len(store.MachineStates))
	for i, st := range store.MachineStates {
		names[i] = string(st)
	}
	return strings.Join(names, ", ")
}

// ParseTimeout reads a timeout parameter: whole seconds ("30") or a Go
// duration ("30s", "1m"); "" is 0.
func ParseTimeout(name, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 || n > 1<<31 {
			return 0, badRequest("%s %q: want seconds or a duration like 30s", name, v)
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, badRequest("%s %q: want seconds or a duration like 30s", name, v)
	}
	return d, nil
}

// Duration is a timeout in a JSON body: a Go duration string ("10s", as
// Fly.io's clients send) or a number of seconds.
type Duration time.Duration

// MaxStopTimeout bounds the timeouts of stop and restart.
const MaxStopTimeout = time.Hour

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("timeout %q: want a duration like 10s", s)
		}
		*d = Duration(v)
		return nil
	}
	var n float64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("timeout: want a duration like \"10s\" or a number of seconds")
	}
	if n < 0 || n > MaxStopTimeout.Seconds() {
		return fmt.Errorf("timeout %v: want at most %d seconds", n, int(MaxStopTimeout.Seconds()))
	}
	*d = Duration(n * float64(time.Second))
	return nil
}

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d Duration) check(name string) error {
	if d < 0 || time.Duration(d) > MaxStopTimeout {
		return badRequest("%s %s: want from 0 to %s", name, time.Duration(d), MaxStopTimeout)
	}
	return nil
}

// signals are the signals a machine's process can be sent, as Fly.io
// accepts them.
var signals = []string{"SIGABRT", "SIGALRM", "SIGFPE", "SIGHUP", "SIGILL", "SIGINT", "SIGKILL", "SIGPIPE",
	"SIGQUIT", "SIGSEGV", "SIGTERM", "SIGTRAP", "SIGUSR1", "SIGUSR2"}

func checkSignal(sig string, optional bool) error {
	if sig == "" && optional {
		return nil
	}
	if !slices.Contains(signals, sig) {
		return badRequest("signal %q: want one of %s", sig, strings.Join(signals, ", "))
	}
	return nil
}
