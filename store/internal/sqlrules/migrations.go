package sqlrules

import (
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

// Migrate applies, with apply, each migration of fsys that applied lacks,
// in order; see Pending.
func Migrate(fsys fs.FS, applied []string, apply func(m Migration) error) error {
	pending, err := Pending(fsys, applied)
	if err != nil {
		return err
	}
	for _, m := range pending {
		if err := apply(m); err != nil {
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
