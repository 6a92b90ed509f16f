// Package pgtest gives tests a fresh PostgreSQL database on the server
// named by CAVEAT_TEST_POSTGRES_URL, or skips them when it is not set
// (fails them in CI: see internal/testenv).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"

	"github.com/caveatdev/caveat/internal/testenv"
	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable holding the test server's URL.
const EnvURL = "CAVEAT_TEST_POSTGRES_URL"

// ServerURL returns the test server's URL, or skips the test (fails it
// under CAVEAT_TEST_REQUIRE_ALL; see internal/testenv).
func ServerURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		testenv.Missing(t, fmt.Sprintf("%s is not set: to run the PostgreSQL tests, start a server with "+
			"`export %s=$(scripts/start-postgres.sh /tmp/caveat-pg)` (or point it at any server whose role may CREATE DATABASE)",
			EnvURL, EnvURL))
	}
	return u
}

// FreshDatabase creates an empty database on the test server, drops it
// when t ends, and returns its URL.
func FreshDatabase(t testing.TB) string {
	t.Helper()
	base := ServerURL(t)
	ctx := context.WithoutCancel(t.Context())
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to %s: %v", EnvURL, err)
	}
	defer admin.Close(ctx)
	var rnd [8]byte
	rand.Read(rnd[:])
	name := "caveat_test_" + hex.EncodeToString(rnd[:])
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s must be a postgres:// URL", EnvURL)
	}
	u.Path = "/" + name
	return u.String()
}
