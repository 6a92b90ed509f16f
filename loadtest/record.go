package loadtest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Record is one line of the record file.
type Record struct {
	// Op is "setup" (the first line: the organization), "mint" (a mint
	// that returned success), "revoke" (a revocation that returned
	// success) or "revoke-unknown" (a revocation whose every attempt
	// failed: it may or may not have happened).
	Op string    `json:"op"`
	At time.Time `json:"at"`
	// URL is the base URL that answered (mint, revoke).
	URL string `json:"url,omitempty"`
	// ID is the token's id (mint, revoke, revoke-unknown).
	ID string `json:"id,omitempty"`
	// Token is the minted token (mint), secret.
	Token string `json:"token,omitempty"`
	// Access is what the minted token allows, to check it with (mint).
	Access json.RawMessage `json:"access,omitempty"`
	// Org and OrgID are the organization (setup).
	Org   string `json:"org,omitempty"`
	OrgID uint64 `json:"org_id,omitempty"`
}

// recorder appends records to a file, one JSON line each, safely for
// concurrent use.
type recorder struct {
	mu  sync.Mutex
	f   *os.File
	w   *bufio.Writer
	n   int
	err error
}

// createRecorder creates the record file with mode 0600; it refuses to
// overwrite an existing file unless force is set. The file holds tokens.
func createRecorder(path string, force bool) (*recorder, error) {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("record file %s exists: it is not overwritten without --force", path)
	}
	if err != nil {
		return nil, fmt.Errorf("record file: %w", err)
	}
	if force {
		// An existing file keeps its mode through O_TRUNC.
		if err := f.Chmod(0o600); err != nil {
			f.Close()
			return nil, fmt.Errorf("record file: %w", err)
		}
	}
	return &recorder{f: f, w: bufio.NewWriter(f)}, nil
}

// add writes one record; a nil recorder records nothing. A record of a
// success is flushed to the file before add returns, so that what was
// recorded survives a crash of the load tool itself.
func (r *recorder) add(rec Record) {
	if r == nil {
		return
	}
	b, err := json.Marshal(rec)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return
	}
	if err != nil {
		r.err = err
		return
	}
	if _, err := r.w.Write(append(b, '\n')); err != nil {
		r.err = err
		return
	}
	if err := r.w.Flush(); err != nil {
		r.err = err
		return
	}
	r.n++
}

// count returns the records written so far.
func (r *recorder) count() int {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// close flushes and closes the file, and returns the first write error.
func (r *recorder) close() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.w.Flush(); err != nil && r.err == nil {
		r.err = err
	}
	if err := r.f.Close(); err != nil && r.err == nil {
		r.err = err
	}
	if r.err != nil {
		return fmt.Errorf("record file: %w", r.err)
	}
	return nil
}

// ReadRecords reads a record file's lines. A last line cut short (the
// tool was killed while writing it) is ignored; any other malformed line
// is an error.
func ReadRecords(rd io.Reader) ([]Record, error) {
	var out []Record
	br := bufio.NewReader(rd)
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if len(b) > 0 && b[len(b)-1] == '\n' {
			var rec Record
			if jerr := json.Unmarshal(b, &rec); jerr != nil {
				return nil, fmt.Errorf("record line %d: %w", line, jerr)
			}
			out = append(out, rec)
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading records: %w", err)
		}
	}
}
