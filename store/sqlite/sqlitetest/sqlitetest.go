// Package sqlitetest gives tests a fresh SQLite store in a temporary
// directory, as pgtest gives them a PostgreSQL database, so that the
// packages testing against a store do not each open their own.
package sqlitetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/caveatdev/caveat/store/sqlite"
)

// Open opens a new SQLite store in a temporary directory, closed when the
// test ends, and returns it with its file's path (for the tests that open
// the file a second time or look at it).
func Open(t testing.TB) (*sqlite.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "caveat.db")
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open the SQLite store %s: %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}
