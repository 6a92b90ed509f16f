package flyio

import (
	"fmt"
	"strings"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/internal/msgpack"
)

// Commands (type 27) allows only the listed commands to be run on a
// machine (machine exec). A command is allowed if some entry's Args are a
// prefix of it, or, for an Exact entry, equal to it. An entry with no args
// allows every command; an empty list allows none. An access without a
// command is ErrResourceUnspecified.
//
// Body: the list itself, each entry [args: list<str> | nil, exact: bool];
// JSON [{"args": ["ls", "-l"], "exact": true}, …], exact omitted when false.
type Commands []Command

// Command is one entry of Commands.
type Command struct {
	Args  []string `json:"args"`
	Exact bool     `json:"exact,omitempty"`
}

// CaveatType implements caveat.Caveat.
func (c *Commands) CaveatType() caveat.CaveatType { return TypeCommands }

// AppendBody implements caveat.Caveat.
func (c *Commands) AppendBody(b []byte) []byte {
	if *c == nil {
		return msgpack.AppendNil(b)
	}
	b = msgpack.AppendArrayHeader(b, len(*c))
	for _, cmd := range *c {
		b = msgpack.AppendArrayHeader(b, 2)
		b = appendStrings(b, cmd.Args)
		b = msgpack.AppendBool(b, cmd.Exact)
	}
	return b
}

func decodeCommands(body []byte) (Commands, error) {
	r := msgpack.NewStrictReader(body)
	if r.TryNil() {
		return nil, r.ExpectEnd()
	}
	n, err := r.ReadArrayHeader()
	if err != nil {
		return nil, err
	}
	c := make(Commands, 0, n)
	for i := 0; i < n; i++ {
		var cmd Command
		if err := r.ReadRecordHeader(2); err != nil {
			return nil, fmt.Errorf("command %d: %w", i, err)
		}
		if cmd.Args, err = readStrings(&r); err != nil {
			return nil, fmt.Errorf("command %d args: %w", i, err)
		}
		if cmd.Exact, err = r.ReadBool(); err != nil {
			return nil, fmt.Errorf("command %d exact: %w", i, err)
		}
		c = append(c, cmd)
	}
	return c, r.ExpectEnd()
}

// Prohibits implements caveat.Caveat.
func (c Commands) Prohibits(a caveat.Access) error {
	fa, err := access(a, "Commands")
	if err != nil {
		return err
	}
	if fa.Command == nil {
		return fmt.Errorf("%w: the access names no command, and the token allows only some commands",
			caveat.ErrResourceUnspecified)
	}
	for _, cmd := range c {
		if cmd.allows(fa.Command) {
			return nil
		}
	}
	return fmt.Errorf("%w: command %q not allowed (allowed: %s)", caveat.ErrUnauthorizedForResource,
		fa.Command, c.describe())
}

func (cmd Command) allows(argv []string) bool {
	if len(cmd.Args) > len(argv) || (cmd.Exact && len(cmd.Args) != len(argv)) {
		return false
	}
	for i, arg := range cmd.Args {
		if argv[i] != arg {
			return false
		}
	}
	return true
}

func (c Commands) describe() string {
	if len(c) == 0 {
		return "none"
	}
	parts := make([]string, len(c))
	for i, cmd := range c {
		parts[i] = fmt.Sprintf("%q", cmd.Args)
		if cmd.Exact {
			parts[i] += " exactly"
		} else {
			parts[i] += " and longer"
		}
	}
	return strings.Join(parts, ", ")
}

func init() {
	caveat.Register(caveat.Def[Commands]{Name: "Commands", Decode: decodeCommands})
}
