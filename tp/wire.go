package tp

// The JSON messages of the protocol, the well-known paths, and the flow
// secrets. Both sides use these, so that the client and the server cannot
// drift apart on a field name.

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strings"
)

// Paths under a third party's location (spec §8.1).
const (
	// InitPath is appended to a location to form the init endpoint.
	InitPath = "/.well-known/macfly/3p"
	// PollPath is the prefix of the poll URLs that Server hands out; the
	// poll secret follows it after a slash.
	PollPath = InitPath + "/poll"
)

// MaxRequestBody bounds an init request body that Server reads. A ticket is
// well under 1 KiB in practice.
const MaxRequestBody = 64 << 10

// maxResponseBody bounds a response body that Client reads: a discharge is
// at most caveat.MaxTokenSize bytes, which is about 88 KiB in base64.
const maxResponseBody = 1 << 20

// initRequest is the body of POST <location>/.well-known/macfly/3p.
type initRequest struct {
	// Ticket is standard padded base64 of the sealed ticket bytes.
	Ticket string `json:"ticket"`
	// ParentBinding is this package's extension: standard padded base64 of
	// the binding ID (SHA-256 of the tail) of the permission token the
	// discharge is for. A server that knows it binds the discharge before
	// finalising it; the reference server ignores it.
	ParentBinding string `json:"parent_binding,omitempty"`
}

// response is the body of every answer: the init answers, the poll
// answers and the errors (spec §8.3).
type response struct {
	Error           string           `json:"error,omitempty"`
	Discharge       string           `json:"discharge,omitempty"`
	PollURL         string           `json:"poll_url,omitempty"`
	UserInteractive *userInteractive `json:"user_interactive,omitempty"`
}

type userInteractive struct {
	UserURL string `json:"user_url,omitempty"`
	PollURL string `json:"poll_url,omitempty"`
}

// InitURL returns the init endpoint of the third party at location: the
// location with InitPath appended, without a doubled slash when the location
// ends in one (spec §8.1).
func InitURL(location string) string {
	return strings.TrimSuffix(location, "/") + InitPath
}

// secretSize is the number of random bytes in a poll or user secret; the
// secret is their lowercase hex (spec §8.1).
const secretSize = 16

func newSecret() string {
	var b [secretSize]byte
	rand.Read(b[:]) // never fails (crypto/rand aborts the process instead)
	return hex.EncodeToString(b[:])
}

// validSecret reports whether s has the shape of a secret this package
// makes, so that anything else is turned away before a store lookup.
func validSecret(s string) bool {
	if len(s) != 2*secretSize {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Domain-separation labels: a poll secret and a user secret hash to
// different FlowIDs, so that a user URL (which a browser shows and keeps in
// its history) can never be used to poll for the discharge.
const (
	labelPoll = "caveat tp poll secret v1\x00"
	labelUser = "caveat tp user secret v1\x00"
)

func secretID(label, secret string) FlowID {
	h := sha256.New()
	h.Write([]byte(label))
	h.Write([]byte(secret))
	var id FlowID
	h.Sum(id[:0])
	return id
}

// httpURL reports whether u is an absolute http or https URL with a host.
func httpURL(u *url.URL) bool {
	return (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
