package cli

// Reading keys, caveats and durations from flags and files. Key material is
// never quoted in an error: only its path, its length or its encoding is.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/internal/keyfile"
	"github.com/caveatdev/caveat/internal/lifetime"
)

const (
	maxKeyFile     = 64 << 10
	maxCaveatInput = 1 << 20
)

// readKeyText reads a key file (standard padded base64) for flag.
func readKeyText(flag, path string) ([]byte, error) {
	if path == "" {
		return nil, failf("%s is empty: give the path of a key file", flag)
	}
	if path == "-" {
		return nil, failf("%s cannot be \"-\": keys are read from files only", flag)
	}
	b, err := readFileLimited(path, maxKeyFile)
	if err != nil {
		return nil, failf("reading %s: %v", flag, err)
	}
	k, err := keyfile.Decode(b)
	if err != nil {
		return nil, failf("%s %s: %v", flag, path, err).
			withHint("a key file holds the key as standard padded base64, e.g. from: head -c 32 /dev/urandom | base64")
	}
	return k, nil
}

// readSigningKey reads a root key file: any non-empty length.
func readSigningKey(flag, path string) (caveat.SigningKey, error) {
	k, err := readKeyText(flag, path)
	if err != nil {
		return nil, err
	}
	return caveat.SigningKey(k), nil
}

// readEncryptionKey reads a third-party shared secret: exactly 32 bytes.
func readEncryptionKey(flag, path string) (caveat.EncryptionKey, error) {
	k, err := readKeyText(flag, path)
	if err != nil {
		return caveat.EncryptionKey{}, err
	}
	ek, err := caveat.ParseEncryptionKey(k)
	if err != nil {
		return caveat.EncryptionKey{}, failf("%s %s: %v", flag, path, err).
			withHint("a third-party secret is 32 bytes, standard padded base64 (44 characters)")
	}
	return ek, nil
}

// readCaveatsJSON reads a JSON caveat array from file, or from stdin when
// file is "-" (or when file is "" and stdinDefault is set). A JSON array
// that is empty gives no caveats.
func (a *app) readCaveatsJSON(flag, file string, stdinDefault bool) ([]caveat.Caveat, error) {
	var data []byte
	var where string
	switch {
	case file == "-" || (file == "" && stdinDefault):
		if a.stdinUse != "" {
			return nil, failf("stdin is already used for %s, so the caveats must come from a file: use %s FILE", a.stdinUse, flag)
		}
		b, err := a.readStdin("the caveats JSON", maxCaveatInput)
		if err != nil {
			return nil, err
		}
		data, where = b, "stdin"
	case file == "":
		return nil, nil
	default:
		b, err := readFileLimited(file, maxCaveatInput)
		if err != nil {
			return nil, failf("reading %s: %v", flag, err)
		}
		data, where = b, file
	}
	cs, err := caveat.ParseJSON(data)
	if err != nil {
		return nil, failf("caveats from %s: %v", where, err).
			withHint(`caveats are a JSON array like [{"type": "Machines", "body": {"machines": {"": "rC"}}}]`)
	}
	for i, c := range cs {
		switch c.CaveatType() {
		case caveat.Type3P:
			return nil, failf("caveats from %s: caveat %d: a third-party caveat cannot be given as JSON: its ticket must be sealed", where, i).
				withHint("use 'caveat tokens 3p add --location URL --secret-file FILE' to add one")
		case caveat.TypeBindToParentToken:
			return nil, failf("caveats from %s: caveat %d: BindToParentToken cannot be given as JSON: only the issuer of a discharge can bind it", where, i)
		}
	}
	return cs, nil
}

// parseExpiry parses an --expiry value: a positive lifetime, as a Go
// duration or in days (see package lifetime; the API reads the same forms).
func parseExpiry(s string) (time.Duration, error) {
	d, err := lifetime.Parse(s)
	if err != nil {
		return 0, failf("--expiry: %v", err).
			withHint("days work too: 30d is a month, 365d a year")
	}
	return d, nil
}

// expiryCaveat returns the ValidityWindow for an --expiry value, or nil when
// the flag is empty.
func (a *app) expiryCaveat(s string) (caveat.Caveat, error) {
	if s == "" {
		return nil, nil
	}
	d, err := parseExpiry(s)
	if err != nil {
		return nil, err
	}
	now, err := a.now()
	if err != nil {
		return nil, err
	}
	return caveat.NewValidityWindow(now, d), nil
}

// parseTrustedKeys reads --3p-key LOCATION=FILE values. The split is at
// the last "=", since a location (a URL) is likelier to hold one than a path.
func parseTrustedKeys(values []string) (caveat.TrustedThirdParties, error) {
	if len(values) == 0 {
		return nil, nil
	}
	trusted := caveat.TrustedThirdParties{}
	for _, v := range values {
		i := strings.LastIndexByte(v, '=')
		if i <= 0 || i == len(v)-1 {
			return nil, failf("--3p-key %s: want LOCATION=FILE", describeArg(v)).
				withHint("e.g. --3p-key https://auth.example.com=auth.key")
		}
		loc, file := v[:i], v[i+1:]
		k, err := readEncryptionKey(fmt.Sprintf("--3p-key for %s", loc), file)
		if err != nil {
			return nil, err
		}
		trusted[loc] = append(trusted[loc], k)
	}
	return trusted, nil
}

// describeJSONError turns an encoding/json error into a message that names
// the field and says what was wrong, without Go type names.
func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te) && te.Field != "":
		return fmt.Sprintf("field %q: cannot use a JSON %s here", te.Field, te.Value)
	case errors.As(err, &te):
		return fmt.Sprintf("cannot use a JSON %s here", te.Value)
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of JSON"
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return "unknown field " + rest
	}
	return strings.TrimPrefix(msg, "json: ")
}

// decodeStrictJSON decodes one JSON value into v, refusing unknown fields
// and anything after the value; errors are described for people.
func decodeStrictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.New(describeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}
