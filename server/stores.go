package server

import (
	"context"
	"fmt"

	"github.com/caveatdev/caveat/store"
	"github.com/caveatdev/caveat/store/postgres"
	"github.com/caveatdev/caveat/store/sqlite"
)

func openSQLite(ctx context.Context, path string) (store.Store, error) {
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("open SQLite database %s: %w", path, err)
	}
	return db, nil
}

func openPostgres(ctx context.Context, url string) (store.Store, error) {
	db, err := postgres.Open(ctx, url)
	if err != nil {
		// The URL may hold a password: name the backend, not the URL.
		return nil, fmt.Errorf("open PostgreSQL database: %w", err)
	}
	return db, nil
}
