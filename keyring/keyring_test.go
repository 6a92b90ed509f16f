package keyring

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/internal/fake"
	"github.com/caveatdev/caveat/store"
	"github.com/caveatdev/caveat/store/sqlite"
	"github.com/caveatdev/caveat/store/sqlite/sqlitetest"
)

func newOrg(t *testing.T, db *sqlite.DB, slug string, at time.Time) uint64 {
	t.Helper()
	o, err := db.CreateOrganization(context.Background(), store.NewOrganization{Slug: slug, CreatedAt: at})
	if err != nil {
		t.Fatal(err)
	}
	return o.ID
}

func TestKeyringRotateVerifyRetire(t *testing.T) {
	ctx := context.Background()
	db, _ := sqlitetest.Open(t)
	clk := fake.NewClock(time.Unix(1764000000, 0))
	master := NewMasterKey()
	kr := NewKeyring(master, db, clk.Now)
	org := newOrg(t, db, "acme", clk.Now())

	if _, _, err := kr.MintingKey(ctx, org); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("minting key before any: %v", err)
	}
	kid1, err := kr.Rotate(ctx, org)
	if err != nil {
		t.Fatal(err)
	}
	gotKID, key1, err := kr.MintingKey(ctx, org)
	if err != nil || !bytes.Equal(gotKID, kid1) {
		t.Fatalf("minting key %x, %v; want %x", gotKID, err, kid1)
	}
	m, err := caveat.Mint(key1, caveat.NewNonce(kid1, false), "https://x/v1")
	if err != nil {
		t.Fatal(err)
	}

	clk.Advance(time.Hour)
	kid2, err := kr.Rotate(ctx, org)
	if err != nil {
		t.Fatal(err)
	}
	if k, _, _ := kr.MintingKey(ctx, org); !bytes.Equal(k, kid2) {
		t.Fatalf("after rotation the minting key is %x, want %x", k, kid2)
	}
	// A second keyring (another replica) with an empty cache verifies the
	// old token from the store.
	other := NewKeyring(master, db, clk.Now)
	for name, ring := range map[string]*Keyring{"same": kr, "other replica": other} {
		key, gotOrg, err := ring.Lookup(ctx, kid1)
		if err != nil || gotOrg != org {
			t.Fatalf("%s: lookup of the rotated key: org %d, %v", name, gotOrg, err)
		}
		if _, err := m.Verify(key, nil, nil); err != nil {
			t.Fatalf("%s: rotated key no longer verifies: %v", name, err)
		}
	}

	if err := kr.Retire(ctx, kid2); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("retiring the active key: %v", err)
	}
	if err := kr.Retire(ctx, kid1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := kr.Lookup(ctx, kid1); !errors.Is(err, ErrRetiredKey) || !errors.Is(err, caveat.ErrInvalid) {
		t.Fatalf("retired key on the replica that retired it: %v", err)
	}
	// The other replica still has it cached, until CacheTTL passes.
	if _, _, err := other.Lookup(ctx, kid1); err != nil {
		t.Fatalf("cached key: %v", err)
	}
	clk.Advance(other.CacheTTL)
	if _, _, err := other.Lookup(ctx, kid1); !errors.Is(err, ErrRetiredKey) {
		t.Fatalf("retired key after CacheTTL on another replica: %v", err)
	}
	if _, _, err := kr.Lookup(ctx, []byte("no such key id..")); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unknown key: %v", err)
	}
}

func TestKeyringWrongMasterKey(t *testing.T) {
	ctx := context.Background()
	db, _ := sqlitetest.Open(t)
	clk := fake.NewClock(time.Unix(1764000000, 0))
	kr := NewKeyring(NewMasterKey(), db, clk.Now)
	org := newOrg(t, db, "acme", clk.Now())
	kid, err := kr.Rotate(ctx, org)
	if err != nil {
		t.Fatal(err)
	}
	wrong := NewKeyring(NewMasterKey(), db, clk.Now)
	_, _, err = wrong.Lookup(ctx, kid)
	if err == nil || !strings.Contains(err.Error(), "does not open") {
		t.Fatalf("lookup under another master key: %v", err)
	}
}

// TestSealedKeyBoundToOrgAndKID: a sealed key copied to another
// organization's row does not open there.
func TestSealedKeyBoundToOrgAndKID(t *testing.T) {
	kr := NewKeyring(NewMasterKey(), nil, time.Now)
	key := caveat.NewSigningKey()
	sealed := kr.seal(1, []byte("kid-1"), key)
	if got, err := kr.open(store.RootKey{OrgID: 1, KID: []byte("kid-1"), Sealed: sealed}); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("open: %v", err)
	}
	for _, rk := range []store.RootKey{
		{OrgID: 2, KID: []byte("kid-1"), Sealed: sealed},
		{OrgID: 1, KID: []byte("kid-2"), Sealed: sealed},
		{OrgID: 1, KID: []byte("kid-1"), Sealed: sealed[:10]},
	} {
		if _, err := kr.open(rk); err == nil {
			t.Errorf("sealed key opened as org %d kid %q (%d bytes)", rk.OrgID, rk.KID, len(rk.Sealed))
		}
	}
}

// TestDatabaseHoldsNoKey: the SQLite file, and its WAL, contain neither a
// root key nor the master key nor any key derived from it.
func TestDatabaseHoldsNoKey(t *testing.T) {
	ctx := context.Background()
	db, path := sqlitetest.Open(t)
	clk := fake.NewClock(time.Unix(1764000000, 0))
	master := NewMasterKey()
	kr := NewKeyring(master, db, clk.Now)
	var secrets [][]byte
	for _, slug := range []string{"a", "b", "c"} {
		org := newOrg(t, db, slug, clk.Now())
		for i := 0; i < 2; i++ {
			if _, err := kr.Rotate(ctx, org); err != nil {
				t.Fatal(err)
			}
			_, key, err := kr.MintingKey(ctx, org)
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, key)
		}
	}
	_, session := kr.SessionKey()
	tk := kr.LoginTicketKey()
	secrets = append(secrets, master[:], session, tk[:])
	var dump []byte
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(path + suffix)
		if err == nil {
			dump = append(dump, b...)
		}
	}
	if len(dump) == 0 {
		t.Fatal("empty database")
	}
	for i, s := range secrets {
		// Any 8-byte window of a key would be a leak.
		for j := 0; j+8 <= len(s); j++ {
			if bytes.Contains(dump, s[j:j+8]) {
				t.Fatalf("secret %d found in the database files", i)
			}
		}
	}
}

func TestMasterKeyNotPrinted(t *testing.T) {
	k := NewMasterKey()
	for _, s := range []string{k.String(), k.GoString()} {
		if strings.Contains(s, string(k[:4])) || s != "[master key]" {
			t.Errorf("master key printed as %q", s)
		}
	}
}
