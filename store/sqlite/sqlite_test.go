package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caveatdev/caveat/store"
	"github.com/caveatdev/caveat/store/storetest"
	"github.com/google/uuid"
)

// mustOpen opens a store at path and closes it when t ends.
func mustOpen(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return mustOpen(t, filepath.Join(t.TempDir(), "caveat.db"))
	})
}

func TestPragmas(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "caveat.db"))
	for _, pool := range []struct {
		name string
		q    queryer
	}{{"writer", db.w}, {"reader", db.r}} {
		var mode string
		var fk, busy int
		if err := pool.q.QueryRowContext(t.Context(), "PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := pool.q.QueryRowContext(t.Context(), "PRAGMA foreign_keys").Scan(&fk); err != nil {
			t.Fatal(err)
		}
		if err := pool.q.QueryRowContext(t.Context(), "PRAGMA busy_timeout").Scan(&busy); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || fk != 1 || busy != int(busyTimeout.Milliseconds()) {
			t.Errorf("%s: journal_mode %q, foreign_keys %d, busy_timeout %d", pool.name, mode, fk, busy)
		}
	}
	// The readers cannot write.
	if _, err := db.r.ExecContext(t.Context(), "DELETE FROM users"); err == nil {
		t.Error("a reader connection could write")
	}
}

// TestForeignKeysEnforced writes around the store's own checks, to show
// that the database refuses dangling references by itself.
func TestForeignKeysEnforced(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "caveat.db"))
	_, err := db.w.ExecContext(t.Context(),
		"INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (41, 42, 'admin', 0)")
	if !isForeignKey(err) {
		t.Fatalf("dangling membership: error %v, want a foreign key violation", err)
	}
	u, err := db.CreateUser(t.Context(), store.NewUser{Email: "a@example.com", PasswordHash: "h", CreatedAt: time.Unix(1e9, 0)})
	if err != nil {
		t.Fatal(err)
	}
	o, err := db.CreateOrganization(t.Context(), store.NewOrganization{Slug: "a", CreatedAt: time.Unix(1e9, 0)})
	if err != nil {
		t.Fatal(err)
	}
	other, err := db.CreateOrganization(t.Context(), store.NewOrganization{Slug: "b", CreatedAt: time.Unix(1e9, 0)})
	if err != nil {
		t.Fatal(err)
	}
	app, err := db.CreateApp(t.Context(), store.NewApp{OrgID: other.ID, Name: "x", CreatedAt: time.Unix(1e9, 0)})
	if err != nil {
		t.Fatal(err)
	}
	// A token whose app is in another organization.
	_, err = db.w.ExecContext(t.Context(),
		"INSERT INTO tokens (id, name, profile, org_id, app_id, created_by, created_at) VALUES (?, 'n', 'p', ?, ?, ?, 0)",
		uuid.NewString(), o.ID, app.ID, u.ID)
	if !isForeignKey(err) {
		t.Fatalf("token with another organization's app: error %v, want a foreign key violation", err)
	}
}

func TestFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "caveat.db")
	mustOpen(t, path)
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}
}

func TestReopenKeepsDataAndMigratesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "caveat.db")
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	u, err := db.CreateUser(t.Context(), store.NewUser{Email: "a@example.com", PasswordHash: "h", CreatedAt: time.Unix(1e9, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = mustOpen(t, path)
	got, err := db.GetUser(t.Context(), u.ID)
	if err != nil {
		t.Fatalf("after reopening: %v", err)
	}
	if got.Email != "a@example.com" {
		t.Fatalf("after reopening: %+v", got)
	}
	names, err := migrations.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.r.QueryRowContext(t.Context(), "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(names) || n == 0 {
		t.Fatalf("schema_migrations has %d rows, want %d", n, len(names))
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "caveat.db")
	db := mustOpen(t, path)
	if _, err := db.w.ExecContext(t.Context(), "INSERT INTO schema_migrations (version) VALUES ('9999_from_the_future')"); err != nil {
		t.Fatal(err)
	}
	_, err := Open(t.Context(), path)
	if err == nil || !strings.Contains(err.Error(), "9999_from_the_future") {
		t.Fatalf("opening a newer database: error %v, want one naming the unknown migration", err)
	}
}

func TestOddPaths(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"with space.db", "q?mark.db", "hash#.db", "percent%20.db"} {
		path := filepath.Join(dir, name)
		db := mustOpen(t, path)
		if _, err := db.CreateOrganization(t.Context(), store.NewOrganization{Slug: "x", CreatedAt: time.Unix(1e9, 0)}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("%s: the database is not at its path: %v", name, err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "with space.db") && !strings.HasPrefix(e.Name(), "q?mark.db") &&
			!strings.HasPrefix(e.Name(), "hash#.db") && !strings.HasPrefix(e.Name(), "percent%20.db") {
			t.Errorf("stray file %q", e.Name())
		}
	}
}

func TestOpenRefusesNonFiles(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file::memory:?cache=shared"} {
		if _, err := Open(t.Context(), p); err == nil {
			t.Errorf("Open(%q) succeeded", p)
		}
	}
	if _, err := Open(t.Context(), filepath.Join(t.TempDir(), "missing", "caveat.db")); err == nil {
		t.Error("Open in a missing directory succeeded")
	}
}

// TestTwoHandlesOneFile has two DBs on one file write at once, as two
// processes would: the busy timeout must absorb the lock contention.
func TestTwoHandlesOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "caveat.db")
	a := mustOpen(t, path)
	b := mustOpen(t, path)
	u, err := a.CreateUser(t.Context(), store.NewUser{Email: "a@example.com", PasswordHash: "h", CreatedAt: time.Unix(1e9, 0)})
	if err != nil {
		t.Fatal(err)
	}
	o, err := a.CreateOrganization(t.Context(), store.NewOrganization{Slug: "a", Admin: u.ID, CreatedAt: time.Unix(1e9, 0)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		db := a
		if i%2 == 1 {
			db = b
		}
		wg.Go(func() {
			for j := range 10 {
				tk := store.Token{ID: uuid.NewString(), Name: fmt.Sprint(i, j), Profile: "org", OrgID: o.ID, CreatedBy: u.ID, CreatedAt: time.Unix(1e9, 0)}
				if err := db.CreateToken(t.Context(), tk); err != nil {
					errs <- err
					return
				}
				if _, err := db.RevokeToken(t.Context(), tk.ID, time.Unix(1e9+1, 0)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	toks, _, err := b.ListTokens(t.Context(), store.TokenFilter{OrgID: o.ID}, store.Page{Limit: store.MaxPageLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != 80 {
		t.Fatalf("%d tokens, want 80", len(toks))
	}
}

// TestCancelledContext checks that a write waiting for the writer gives up
// with its context.
func TestCancelledContext(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "caveat.db"))
	tx, err := db.w.BeginTx(t.Context(), nil) // hold the only writer connection
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = db.CreateUser(ctx, store.NewUser{Email: "a@example.com", PasswordHash: "h", CreatedAt: time.Unix(1e9, 0)})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want the context's deadline", err)
	}
	// Reads do not wait for the writer.
	if _, err := db.GetUser(t.Context(), 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("read while the writer is busy: %v", err)
	}
}
