// Package vectors loads the fm2 test vectors (spec §9.2) for tests.
//
// The vectors are committed at testdata/fm2-test-vectors.json so that a
// clean checkout tests the same data everywhere; TestVectorsInSync checks
// that the copy matches ../shared/spec/ whenever that file is present.
// Loading fails the test when the file is missing or a section is absent:
// a vector test never passes with nothing checked.
package vectors

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// FileName is the vectors file, relative to the module root.
const FileName = "testdata/fm2-test-vectors.json"

var (
	once     sync.Once
	sections map[string]json.RawMessage
	loadErr  error
	rootDir  string
)

// Root returns the module root (the directory holding go.mod).
func Root(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("vectors: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Path returns the path of the committed vectors file.
func Path(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(Root(tb), FileName)
}

// Section unmarshals one top-level section of the vectors into dst, failing
// the test if the file or the section is missing or does not parse.
func Section(tb testing.TB, name string, dst any) {
	tb.Helper()
	once.Do(func() {
		rootDir = Root(tb)
		var b []byte
		b, loadErr = os.ReadFile(filepath.Join(rootDir, FileName))
		if loadErr == nil {
			loadErr = json.Unmarshal(b, &sections)
		}
	})
	if loadErr != nil {
		tb.Fatalf("vectors: %v", loadErr)
	}
	raw, ok := sections[name]
	if !ok {
		tb.Fatalf("vectors: section %q missing", name)
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		tb.Fatalf("vectors: section %q: %v", name, err)
	}
}

// Hex decodes a hex string or fails the test.
func Hex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatalf("vectors: bad hex %q: %v", s, err)
	}
	return b
}
