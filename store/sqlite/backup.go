package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Backup writes a consistent copy of the database at path to out, while
// other processes (a running server) keep reading and writing it: SQLite's
// VACUUM INTO reads one snapshot of the database, WAL included, and writes
// a compact standalone file. out must not exist; it is created with mode
// 0600, since the database holds password hashes. The copy is checked with
// PRAGMA integrity_check before Backup returns; a failed backup leaves no
// file behind.
//
// The master key is not in the database: back it up separately.
func Backup(ctx context.Context, path, out string) (err error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	dst, err := filepath.Abs(out)
	if err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	// VACUUM INTO writes into an empty file; creating it first, exclusively,
	// gives it its mode and refuses to overwrite anything.
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("sqlite: backup: %s exists; not overwriting it", out)
	}
	if err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	f.Close()
	defer func() {
		if err != nil {
			os.Remove(dst)
		}
	}()

	src, err := sql.Open("sqlite", dsn(abs, []string{fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds())}, "mode=ro"))
	if err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	defer src.Close()
	var tables int
	if err := src.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'").Scan(&tables); err != nil {
		return fmt.Errorf("sqlite: backup: %s: %w", path, err)
	}
	if tables == 0 {
		return fmt.Errorf("sqlite: backup: %s is not a caveat database", path)
	}
	if _, err := src.ExecContext(ctx, "VACUUM INTO ?", dst); err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}

	copyDB, err := sql.Open("sqlite", dsn(dst, nil, "mode=ro"))
	if err != nil {
		return fmt.Errorf("sqlite: backup: check the copy: %w", err)
	}
	defer copyDB.Close()
	var verdict string
	if err := copyDB.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&verdict); err != nil {
		return fmt.Errorf("sqlite: backup: check the copy: %w", err)
	}
	if verdict != "ok" {
		return fmt.Errorf("sqlite: backup: the copy fails integrity_check: %s", verdict)
	}
	return nil
}
