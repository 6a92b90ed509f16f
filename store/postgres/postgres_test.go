package postgres

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caveatdev/caveat/store"
	"github.com/caveatdev/caveat/store/postgres/pgtest"
	"github.com/caveatdev/caveat/store/storetest"
)

// mustOpen opens a store on a fresh database and closes it when t ends.
func mustOpen(t *testing.T) (*DB, string) {
	t.Helper()
	u := pgtest.FreshDatabase(t)
	db, err := Open(t.Context(), u)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, u
}

func TestConformance(t *testing.T) {
	pgtest.ServerURL(t) // skip once, not in every subtest
	storetest.Run(t, func(t *testing.T) store.Store {
		db, _ := mustOpen(t)
		return db
	})
}

// TestReplicasStartTogether opens several stores on one new database at
// once, as replicas starting together would: the advisory lock must make
// them apply each migration once, and all of them must work.
func TestReplicasStartTogether(t *testing.T) {
	u := pgtest.FreshDatabase(t)
	const replicas = 6
	dbs := make([]*DB, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() { dbs[i], errs[i] = Open(t.Context(), u) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		t.Cleanup(func() { dbs[i].Close() })
	}
	names, err := migrations.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := dbs[0].pool.QueryRow(t.Context(), "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(names) || n == 0 {
		t.Fatalf("schema_migrations has %d rows, want %d", n, len(names))
	}
	// What one replica writes, another reads.
	o, err := dbs[1].CreateOrganization(t.Context(), store.NewOrganization{Slug: "acme", CreatedAt: time.Unix(1e9, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dbs[replicas-1].GetOrganizationBySlug(t.Context(), "acme"); err != nil {
		t.Fatalf("organization %d written by one replica is not seen by another: %v", o.ID, err)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	db, u := mustOpen(t)
	if _, err := db.pool.Exec(t.Context(), "INSERT INTO schema_migrations (version) VALUES ('9999_from_the_future')"); err != nil {
		t.Fatal(err)
	}
	_, err := Open(t.Context(), u)
	if err == nil || !strings.Contains(err.Error(), "9999_from_the_future") {
		t.Fatalf("opening a newer database: error %v, want one naming the unknown migration", err)
	}
}

func TestOpenErrorHidesPassword(t *testing.T) {
	const secret = "hunter2-secret"
	_, err := Open(t.Context(), "postgres://caveat:"+secret+"@127.0.0.1:1/caveat?connect_timeout=1&sslmode=disable")
	if err == nil {
		t.Fatal("Open of an unreachable server succeeded")
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatalf("error quotes the password: %v", err)
	}
	_, err = Open(t.Context(), "postgres://caveat:"+secret+"@127.0.0.1:notaport/caveat")
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("bad URL: error %v", err)
	}
}
