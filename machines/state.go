package machines

// The state machine. A machine at rest is created, started, stopped,
// suspended or destroyed. An operation moves it into a transition
// (starting, stopping, suspending, replacing, destroying) whose end is
// stored as the machine's Next state and NextAt time, TransitionTime after
// the operation; nothing runs in the background: whoever reads the
// machine after NextAt records the end of the transition (advance), with
// an event dated NextAt. A transition may lead into another one (a
// restart stops, then starts), each taking TransitionTime.

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/store"
)

// follows is the state a transition leads to once it has been reached;
// states at rest lead nowhere.
var follows = map[store.MachineState]store.MachineState{
	store.MachineStarting:   store.MachineStarted,
	store.MachineStopping:   store.MachineStopped,
	store.MachineSuspending: store.MachineSuspended,
	store.MachineReplacing:  store.MachineStarted,
	store.MachineDestroying: store.MachineDestroyed,
}

// reachedEvent is the event type recorded when a machine reaches a state
// at the end of a transition.
var reachedEvent = map[store.MachineState]string{
	store.MachineStarting:  "restart",
	store.MachineStarted:   "start",
	store.MachineStopped:   "exit",
	store.MachineSuspended: "suspend",
	store.MachineDestroyed: "destroy",
}

// Event sources.
const (
	sourceUser = "user" // an API call
	sourceFlyd = "flyd" // the end of a transition, as Fly's agent reports it
)

// advance records the transitions of m that are over at now, and returns
// the events to append (none when nothing changed).
func advance(m *store.Machine, now time.Time, d time.Duration) []store.MachineEvent {
	var events []store.MachineEvent
	for m.Next != "" && !now.Before(m.NextAt) {
		reached, at := m.Next, m.NextAt
		m.State, m.UpdatedAt = reached, at
		m.Next, m.NextAt = "", time.Time{}
		if f, ok := follows[reached]; ok {
			m.Next, m.NextAt = f, at.Add(d)
		}
		typ := reachedEvent[reached]
		if typ == "" {
			typ = "update"
		}
		events = append(events, store.MachineEvent{Type: typ, Status: string(reached), Source: sourceFlyd, Timestamp: at})
	}
	return events
}

// operation is a user's request to change a machine's state.
type operation struct {
	name string
	from []store.MachineState // the states it is legal in
	// hint says how to get past a refusal of a machine not being
	// destroyed.
	hint string
}

// The operations and the states they are legal in.
var (
	opStart   = operation{name: "start", from: []store.MachineState{store.MachineCreated, store.MachineStopped, store.MachineSuspended}}
	opStop    = operation{name: "stop", from: []store.MachineState{store.MachineStarted, store.MachineSuspended}}
	opSuspend = operation{name: "suspend", from: []store.MachineState{store.MachineStarted}}
	opRestart = operation{name: "restart", from: []store.MachineState{store.MachineStarted}}
	opSignal  = operation{name: "signal", from: []store.MachineState{store.MachineStarted}}
	opUpdate  = operation{name: "update", from: []store.MachineState{store.MachineCreated, store.MachineStarted, store.MachineStopped, store.MachineSuspended}}
	opDestroy = operation{name: "destroy", from: []store.MachineState{store.MachineCreated, store.MachineStopped, store.MachineSuspended},
		hint: "stop it first, or destroy it with force=true"}
	// A forced destroy is legal in every state but the end of a machine.
	opForceDestroy = operation{name: "destroy", from: []store.MachineState{store.MachineCreated, store.MachineStarting,
		store.MachineStarted, store.MachineStopping, store.MachineStopped, store.MachineSuspending,
		store.MachineSuspended, store.MachineReplacing}}
	// Leases and metadata may be changed on any machine not destroyed.
	opKeep = operation{name: "change", from: []store.MachineState{store.MachineCreated, store.MachineStarting,
		store.MachineStarted, store.MachineStopping, store.MachineStopped, store.MachineSuspending,
		store.MachineSuspended, store.MachineReplacing}}
)

// check refuses the operation, with 412 naming the machine's state, when
// it is not legal in it.
func (o operation) check(m *store.Machine) error {
	if slices.Contains(o.from, m.State) {
		return nil
	}
	names := make([]string, len(o.from))
	for i, s := range o.from {
		names[i] = string(s)
	}
	hint := ""
	if m.Next != "" {
		hint = fmt.Sprintf(" (it will be %s at %s)", m.Next, m.NextAt.UTC().Format(time.RFC3339Nano))
	}
	if o.hint != "" && m.State != store.MachineDestroyed && m.State != store.MachineDestroying {
		hint += "; " + o.hint
	}
	return fault.Errorf(fault.FailedPrecondition, "machine %s is %s%s: %s needs a machine that is %s",
		m.ID, m.State, hint, o.name, orList(names))
}

// begin puts m into the transition state, leading to next after d.
func begin(m *store.Machine, state, next store.MachineState, now time.Time, d time.Duration) {
	m.State, m.Next, m.NextAt = state, next, now.Add(d)
}

// rest puts m at rest in state.
func rest(m *store.Machine, state store.MachineState) {
	m.State, m.Next, m.NextAt = state, "", time.Time{}
}

// orList renders "a", "a or b", "a, b or c".
func orList(s []string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}
