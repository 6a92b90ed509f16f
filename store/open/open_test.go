package open

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat/store"
	"github.com/caveatdev/caveat/store/sqlite"
)

func TestKind(t *testing.T) {
	for _, tc := range []struct {
		dsn, want string
		err       bool
	}{
		{dsn: "caveat-data/caveat.db", want: "sqlite"},
		{dsn: "/var/lib/caveat/caveat.db", want: "sqlite"},
		{dsn: "./odd:name.db", want: "sqlite"},
		{dsn: "dir/with://inside.db", want: "sqlite"},
		{dsn: "postgres://u@127.0.0.1/caveat", want: "postgres"},
		{dsn: "postgresql://u@127.0.0.1/caveat", want: "postgres"},
		{dsn: "POSTGRES://u@127.0.0.1/caveat", want: "postgres"},
		{dsn: "", err: true},
		{dsn: "postgress://u@127.0.0.1/caveat", err: true},
		{dsn: "mysql://u@127.0.0.1/caveat", err: true},
	} {
		t.Run(tc.dsn, func(t *testing.T) {
			got, err := Kind(tc.dsn)
			if (err != nil) != tc.err || got != tc.want {
				t.Fatalf("Kind(%q) = %q, %v; want %q, error %v", tc.dsn, got, err, tc.want, tc.err)
			}
		})
	}
}

func TestOpenSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "caveat.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(*sqlite.DB); !ok {
		t.Fatalf("Open(%q) gave a %T", path, s)
	}
	if _, err := s.CreateOrganization(t.Context(), store.NewOrganization{Slug: "acme", CreatedAt: time.Unix(1e9, 0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}

// TestOpenPostgres checks the dispatch without a server: the refusal comes
// from the PostgreSQL backend. The backend itself is tested in package
// postgres.
func TestOpenPostgres(t *testing.T) {
	_, err := Open(t.Context(), "postgres://caveat@127.0.0.1:1/caveat?connect_timeout=1&sslmode=disable")
	if err == nil || !strings.HasPrefix(err.Error(), "postgres: ") {
		t.Fatalf("Open of an unreachable PostgreSQL: error %v, want one from package postgres", err)
	}
}

func TestOpenRefusesUnknownScheme(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if _, err := Open(t.Context(), "postgress://u@127.0.0.1/caveat"); err == nil {
		t.Fatal("Open of a misspelt scheme succeeded")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("a refused DSN left files: %v", entries)
	}
}
