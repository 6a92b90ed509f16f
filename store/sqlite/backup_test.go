package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caveatdev/caveat/store"
)

// TestBackupWhileWriting copies a database while another goroutine keeps
// signing users up: the copy opens as a store, passes integrity_check,
// holds every user whose signup had returned before the backup began, and
// is mode 0600.
func TestBackupWhileWriting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "caveat.db")
	db := mustOpen(t, path)
	signup := func(i int) error {
		_, _, err := db.CreateUserWithOrganization(ctx, store.Signup{
			User:             store.NewUser{Email: fmt.Sprintf("u%d@example.com", i), PasswordHash: "x", CreatedAt: time.Now()},
			OrganizationSlug: fmt.Sprintf("org-%d", i),
		})
		return err
	}
	for i := range 50 {
		if err := signup(i); err != nil {
			t.Fatal(err)
		}
	}
	var (
		stop    atomic.Bool
		wg      sync.WaitGroup
		written atomic.Int64
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 50; !stop.Load(); i++ {
			if err := signup(i); err != nil {
				t.Error(err)
				return
			}
			written.Add(1)
		}
	}()
	for written.Load() < 20 {
		time.Sleep(time.Millisecond)
	}
	before := 50 + int(written.Load())
	out := filepath.Join(dir, "backup.db")
	if err := Backup(ctx, path, out); err != nil {
		t.Fatal(err)
	}
	stop.Store(true)
	wg.Wait()

	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v, want 0600", fi.Mode().Perm())
	}
	cp := mustOpen(t, out)
	for i := range before {
		if _, err := cp.GetUserByEmail(ctx, fmt.Sprintf("u%d@example.com", i)); err != nil {
			t.Fatalf("user %d of %d, signed up before the backup, is not in it: %v", i, before, err)
		}
	}
}

func TestBackupRefuses(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "caveat.db")
	mustOpen(t, path)
	existing := filepath.Join(dir, "existing.db")
	if err := os.WriteFile(existing, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Backup(ctx, path, existing); err == nil || !strings.Contains(err.Error(), "not overwriting") {
		t.Errorf("backup over an existing file: %v", err)
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me" {
		t.Errorf("the existing file was changed: %q", b)
	}
	if err := Backup(ctx, filepath.Join(dir, "missing.db"), filepath.Join(dir, "out1.db")); err == nil {
		t.Error("backup of a missing database succeeded")
	}
	other := filepath.Join(dir, "other.db")
	os.WriteFile(other, nil, 0o600)
	if err := Backup(ctx, other, filepath.Join(dir, "out2.db")); err == nil || !strings.Contains(err.Error(), "not a caveat database") {
		t.Errorf("backup of an empty file: %v", err)
	}
	for _, f := range []string{"out1.db", "out2.db"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("a failed backup left %s behind", f)
		}
	}
}
