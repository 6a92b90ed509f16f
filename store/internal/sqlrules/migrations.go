package sqlrules

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// A Migration is one step of a backend's schema: an embedded
// migrations/NNNN_name.sql, applied in one transaction with its row in
// schema_migrations.
type Migration struct {
	Version string // the file's name without directory and extension
	SQL     string
}

// Migrate brings a database's schema up to date: it reads the versions
// in schema_migrations through c, and applies each migration of fsys that
// they lack (see Pending), in order, each in its own transaction (run by
// tx) together with its row, and only if the row is still missing once
// the transaction has begun, in case another process applied it since.
func Migrate(ctx context.Context, fsys fs.FS, c Conn, tx func(ctx context.Context, fn func(tx Conn) error) error) error {
	rows, err := c.Query(ctx, "SELECT version FROM schema_migrations ORDER BY version")
	applied, err := collect(rows, err, scanString)
	if err != nil {
		return fmt.Errorf("read applied versions: %w", err)
	}
	pending, err := Pending(fsys, applied)
	if err != nil {
		return err
	}
	for _, m := range pending {
		err := tx(ctx, func(tx Conn) error {
			done, err := exists(ctx, tx, "SELECT 1 FROM schema_migrations WHERE version = ?", m.Version)
			if err != nil || done {
				return err
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, "INSERT INTO schema_migrations (version) VALUES (?)", m.Version)
			return err
		})
		if err != nil {
			return fmt.Errorf("apply %s: %w", m.Version, err)
		}
	}
	return nil
}

// Pending returns, in name order, the migrations of fsys (its
// migrations/*.sql) whose versions applied lacks. It fails if applied holds
// a version fsys lacks: the database was written by a newer caveat, and
// this binary must not use it.
func Pending(fsys fs.FS, applied []string) ([]Migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	done := make(map[string]bool, len(applied))
	for _, v := range applied {
		done[v] = true
	}
	var out []Migration
	for _, name := range names {
		v := strings.TrimSuffix(path.Base(name), ".sql")
		if done[v] {
			delete(done, v)
			continue
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, SQL: string(body)})
	}
	for _, v := range applied {
		if done[v] {
			return nil, fmt.Errorf("the database has migration %q, unknown to this binary: it was written by a newer caveat", v)
		}
	}
	return out, nil
}
