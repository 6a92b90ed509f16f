// Package open opens the [store.Store] that a DSN names: a PostgreSQL
// database for a postgres:// or postgresql:// URL, otherwise a SQLite file
// at that path.
package open

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/caveatdev/caveat/store"
	"github.com/caveatdev/caveat/store/postgres"
	"github.com/caveatdev/caveat/store/sqlite"
)

// Open opens and migrates the store named by dsn:
//
//   - postgres://… or postgresql://…: PostgreSQL (see package postgres);
//   - anything else without "://": the path of a SQLite file, created if
//     missing in an existing directory (see package sqlite).
//
// Another URL scheme is an error rather than a file name, so that a typo
// like "postgress://" does not quietly create a SQLite file of that name.
func Open(ctx context.Context, dsn string) (store.Store, error) {
	switch kind, err := Kind(dsn); {
	case err != nil:
		return nil, err
	case kind == "postgres":
		return postgres.Open(ctx, dsn)
	default:
		return sqlite.Open(ctx, dsn)
	}
}

// Kind reports which backend dsn names, "postgres" or "sqlite", without
// opening it.
func Kind(dsn string) (string, error) {
	if dsn == "" {
		return "", errors.New("store: empty database name: want a SQLite path or a postgres:// URL")
	}
	lower := strings.ToLower(dsn)
	if strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://") {
		return "postgres", nil
	}
	if scheme, _, ok := strings.Cut(dsn, "://"); ok && !strings.ContainsAny(scheme, `/\`) {
		return "", fmt.Errorf("store: unsupported database URL scheme %q: want a SQLite path or a postgres:// URL", scheme)
	}
	return "sqlite", nil
}
