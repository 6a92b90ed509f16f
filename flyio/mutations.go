package flyio

import (
	"fmt"
	"strconv"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/internal/msgpack"
)

// Mutations (type 6) allows only the listed GraphQL mutations. An access
// without a mutation is ErrResourceUnspecified. Body: [list<str> | nil];
// JSON {"mutations": ["addCertificate", …]} (or null, which allows none).
type Mutations struct {
	Mutations []string `json:"mutations"`
}

// CaveatType implements caveat.Caveat.
func (c *Mutations) CaveatType() caveat.CaveatType { return TypeMutations }

// AppendBody implements caveat.Caveat.
func (c *Mutations) AppendBody(b []byte) []byte {
	return appendStrings(msgpack.AppendArrayHeader(b, 1), c.Mutations)
}

func decodeMutations(body []byte) (Mutations, error) {
	var c Mutations
	r := msgpack.NewStrictReader(body)
	if err := r.ReadRecordHeader(1); err != nil {
		return c, err
	}
	var err error
	if c.Mutations, err = readStrings(&r); err != nil {
		return c, fmt.Errorf("mutations: %w", err)
	}
	return c, r.ExpectEnd()
}

// Prohibits implements caveat.Caveat: the access's mutation must be listed.
func (c Mutations) Prohibits(a caveat.Access) error {
	fa, err := access(a, "Mutations")
	if err != nil {
		return err
	}
	if fa.Mutation == nil {
		return fmt.Errorf("%w: the access names no GraphQL mutation, and the token allows only mutations",
			caveat.ErrResourceUnspecified)
	}
	for _, m := range c.Mutations {
		if m == *fa.Mutation {
			return nil
		}
	}
	return fmt.Errorf("%w: mutation %s not allowed (allowed: %s)", caveat.ErrUnauthorizedForResource,
		strconv.Quote(*fa.Mutation), quoteList(c.Mutations))
}

// appendStrings appends a list of strings, nil as nil.
func appendStrings(b []byte, list []string) []byte {
	if list == nil {
		return msgpack.AppendNil(b)
	}
	b = msgpack.AppendArrayHeader(b, len(list))
	for _, s := range list {
		b = msgpack.AppendStr(b, s)
	}
	return b
}

// readStrings reads a list of strings, or nil.
func readStrings(r *msgpack.Reader) ([]string, error) {
	if r.TryNil() {
		return nil, nil
	}
	n, err := r.ReadArrayHeader()
	if err != nil {
		return nil, err
	}
	out := make([]string, n)
	for i := range out {
		s, err := r.ReadStr()
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		out[i] = string(s)
	}
	return out, nil
}

func quoteList(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	out := ""
	for i, s := range list {
		if i > 0 {
			out += ", "
		}
		out += strconv.Quote(s)
	}
	return out
}

func init() {
	caveat.Register(caveat.Def[Mutations]{Name: "Mutations", Decode: decodeMutations})
}
