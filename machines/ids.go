package machines

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/caveatdev/caveat/api"
)

// newMachineID returns a random machine id: 14 lowercase hex characters,
// like Fly.io's.
func newMachineID() string {
	var b [7]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newNonce returns a random lease nonce: 32 lowercase hex characters.
func newNonce() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// crockford is the alphabet of ULIDs.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// newInstanceID returns a ULID for now: a machine version, 26 characters
// that sort by time, as Fly.io's instance ids are.
func newInstanceID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	rand.Read(b[6:])
	// 128 bits as 26 base-32 digits, the first holding the top 3 bits.
	var out [26]byte
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// newPrivateIP returns a random address in the 6PN style of Fly.io's
// private networks (fdaa::/16).
func newPrivateIP() string {
	var b [8]byte
	rand.Read(b[:])
	return fmt.Sprintf("fdaa:0:%x:a7b:%x:%x:%x:2", binary.BigEndian.Uint16(b[0:]), binary.BigEndian.Uint16(b[2:]),
		binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:]))
}

// parseImageRef splits "registry/repository:tag@digest". Without a
// registry (a first path element with no "." or ":" that is not
// "localhost") it is Docker Hub's; without a tag, "latest".
func parseImageRef(s string) api.ImageRef {
	var r api.ImageRef
	if i := strings.IndexByte(s, '@'); i >= 0 {
		s, r.Digest = s[:i], s[i+1:]
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 && !strings.Contains(s[i:], "/") {
		s, r.Tag = s[:i], s[i+1:]
	}
	if r.Tag == "" && r.Digest == "" {
		r.Tag = "latest"
	}
	if i := strings.IndexByte(s, '/'); i >= 0 && (strings.ContainsAny(s[:i], ".:") || s[:i] == "localhost") {
		r.Registry, r.Repository = s[:i], s[i+1:]
	} else {
		r.Registry, r.Repository = "docker.io", s
		if !strings.Contains(s, "/") {
			r.Repository = "library/" + s
		}
	}
	return r
}
