package storetest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/caveatdev/caveat/store"
)

func testRootKeys(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	other := MustOrganization(t, s, "other", f.user.ID)

	_, err := s.ActiveRootKey(ctx(t), f.org.ID)
	wantErr(t, err, store.ErrNotFound)

	// Sealed bytes round-trip exactly, zero bytes included.
	sealed1 := store.SealedKey{0, 1, 2, 0, 255, 0}
	input := store.NewRootKey{OrgID: f.org.ID, KID: []byte{0, 'k', '1'}, Sealed: sealed1, CreatedAt: t0}
	k1, err := s.RotateRootKey(ctx(t), input)
	must(t, err)
	want1 := store.RootKey{KID: []byte{0, 'k', '1'}, OrgID: f.org.ID, Sealed: sealed1, State: store.KeyActive, CreatedAt: stored(t0)}
	wantEqual(t, "first key", k1, want1)
	// The store keeps its own copy: the caller may reuse its buffers.
	input.KID[1], input.Sealed[1] = 'X', 'X'
	sealed1 = store.SealedKey{0, 1, 2, 0, 255, 0}
	want1.KID, want1.Sealed = []byte{0, 'k', '1'}, sealed1
	if !bytes.Equal(k1.KID, want1.KID) || !bytes.Equal(k1.Sealed, want1.Sealed) {
		t.Fatal("RotateRootKey returned slices that alias its argument")
	}
	got, err := s.ActiveRootKey(ctx(t), f.org.ID)
	must(t, err)
	wantEqual(t, "ActiveRootKey", got, want1)
	if !got.State.Mints() || !got.State.Verifies() {
		t.Fatal("an active key must mint and verify")
	}

	// Rotation: the new key mints, the old one only verifies.
	k2, err := s.RotateRootKey(ctx(t), store.NewRootKey{OrgID: f.org.ID, KID: []byte("k2"), Sealed: store.SealedKey("sealed-2"), CreatedAt: at(time.Hour)})
	must(t, err)
	want2 := store.RootKey{KID: []byte("k2"), OrgID: f.org.ID, Sealed: store.SealedKey("sealed-2"), State: store.KeyActive, CreatedAt: stored(at(time.Hour))}
	wantEqual(t, "second key", k2, want2)
	got, err = s.ActiveRootKey(ctx(t), f.org.ID)
	must(t, err)
	wantEqual(t, "ActiveRootKey after rotation", got, want2)
	want1.State, want1.RotatedAt = store.KeyRotated, stored(at(time.Hour))
	got, err = s.GetRootKey(ctx(t), []byte{0, 'k', '1'})
	must(t, err)
	wantEqual(t, "rotated key", got, want1)
	if got.State.Mints() || !got.State.Verifies() {
		t.Fatal("a rotated key must verify and not mint")
	}

	// The active key cannot be retired; a rotated one can, once.
	_, err = s.RetireRootKey(ctx(t), []byte("k2"), at(2*time.Hour))
	wantErr(t, err, store.ErrConflict)
	retired, err := s.RetireRootKey(ctx(t), want1.KID, at(2*time.Hour))
	must(t, err)
	if !retired {
		t.Fatal("first RetireRootKey reported false")
	}
	retired, err = s.RetireRootKey(ctx(t), want1.KID, at(3*time.Hour))
	must(t, err)
	if retired {
		t.Fatal("second RetireRootKey reported true")
	}
	want1.State, want1.RetiredAt = store.KeyRetired, stored(at(2*time.Hour))
	got, err = s.GetRootKey(ctx(t), want1.KID)
	must(t, err)
	wantEqual(t, "retired key", got, want1)
	if got.State.Mints() || got.State.Verifies() {
		t.Fatal("a retired key must neither mint nor verify")
	}
	_, err = s.RetireRootKey(ctx(t), []byte("nope"), t0)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.RetireRootKey(ctx(t), want1.KID, time.Time{})
	wantErr(t, err, store.ErrInvalid)

	// A third key, and the other organization's keys stay apart.
	k3, err := s.RotateRootKey(ctx(t), store.NewRootKey{OrgID: f.org.ID, KID: []byte("k3"), Sealed: store.SealedKey("sealed-3"), CreatedAt: at(4 * time.Hour)})
	must(t, err)
	ko, err := s.RotateRootKey(ctx(t), store.NewRootKey{OrgID: other.ID, KID: []byte("ko"), Sealed: store.SealedKey("sealed-o"), CreatedAt: t0})
	must(t, err)
	want2.State, want2.RotatedAt = store.KeyRotated, stored(at(4*time.Hour))
	keys := all(t, pageSize, func(p store.Page) ([]store.RootKey, string, error) { return s.ListRootKeys(ctx(t), f.org.ID, p) })
	wantEqual(t, "ListRootKeys", keys, []store.RootKey{want1, want2, k3})
	keys = all(t, pageSize, func(p store.Page) ([]store.RootKey, string, error) { return s.ListRootKeys(ctx(t), other.ID, p) })
	wantEqual(t, "ListRootKeys of the other organization", keys, []store.RootKey{ko})

	// Key ids are unique across organizations.
	_, err = s.RotateRootKey(ctx(t), store.NewRootKey{OrgID: other.ID, KID: []byte("k3"), Sealed: store.SealedKey("x"), CreatedAt: at(5 * time.Hour)})
	wantErr(t, err, store.ErrExists)

	for _, id := range unknownIDs {
		_, err := s.RotateRootKey(ctx(t), store.NewRootKey{OrgID: id, KID: []byte("kx"), Sealed: store.SealedKey("x"), CreatedAt: t0})
		wantErr(t, err, store.ErrNotFound)
		_, err = s.ActiveRootKey(ctx(t), id)
		wantErr(t, err, store.ErrNotFound)
		keys := all(t, pageSize, func(p store.Page) ([]store.RootKey, string, error) { return s.ListRootKeys(ctx(t), id, p) })
		if len(keys) != 0 {
			t.Fatalf("unknown organization %d has keys %v", id, keys)
		}
	}
	_, err = s.GetRootKey(ctx(t), []byte("kx"))
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetRootKey(ctx(t), nil)
	wantErr(t, err, store.ErrNotFound)

	for _, bad := range []store.NewRootKey{
		{OrgID: f.org.ID, Sealed: store.SealedKey("x"), CreatedAt: t0},
		{OrgID: f.org.ID, KID: make([]byte, store.MaxKIDLen+1), Sealed: store.SealedKey("x"), CreatedAt: t0},
		{OrgID: f.org.ID, KID: []byte("ky"), CreatedAt: t0},
		{OrgID: f.org.ID, KID: []byte("ky"), Sealed: make(store.SealedKey, store.MaxSealedKeyLen+1), CreatedAt: t0},
		{OrgID: f.org.ID, KID: []byte("ky"), Sealed: store.SealedKey("x")},
	} {
		_, err := s.RotateRootKey(ctx(t), bad)
		wantErr(t, err, store.ErrInvalid)
	}
	got, err = s.ActiveRootKey(ctx(t), f.org.ID)
	must(t, err)
	wantEqual(t, "active key after refused rotations", got, k3)
}

// testRootKeyRotationAtomic checks that a refused rotation leaves the
// active key active.
func testRootKeyRotationAtomic(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	other := MustOrganization(t, s, "other", f.user.ID)
	_, err := s.RotateRootKey(ctx(t), store.NewRootKey{OrgID: other.ID, KID: []byte("taken"), Sealed: store.SealedKey("x"), CreatedAt: t0})
	must(t, err)
	k1, err := s.RotateRootKey(ctx(t), store.NewRootKey{OrgID: f.org.ID, KID: []byte("k1"), Sealed: store.SealedKey("x"), CreatedAt: t0})
	must(t, err)

	_, err = s.RotateRootKey(ctx(t), store.NewRootKey{OrgID: f.org.ID, KID: []byte("taken"), Sealed: store.SealedKey("y"), CreatedAt: at(time.Hour)})
	wantErr(t, err, store.ErrExists)
	got, err := s.ActiveRootKey(ctx(t), f.org.ID)
	must(t, err)
	wantEqual(t, "active key after a refused rotation", got, k1)
}

// testConcurrentRotation rotates one organization's key from many
// goroutines: every rotation succeeds and exactly one key is left active.
func testConcurrentRotation(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	_, err := s.RotateRootKey(ctx(t), store.NewRootKey{OrgID: f.org.ID, KID: []byte("k-initial"), Sealed: store.SealedKey("x"), CreatedAt: t0})
	must(t, err)
	errs := parallel(func(i int) error {
		_, err := s.RotateRootKey(ctx(t), store.NewRootKey{
			OrgID: f.org.ID, KID: fmt.Appendf(nil, "k-%d", i), Sealed: store.SealedKey("x"), CreatedAt: at(time.Duration(i+1) * time.Second),
		})
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("rotation %d: %v", i, err)
		}
	}
	keys := all(t, pageSize, func(p store.Page) ([]store.RootKey, string, error) { return s.ListRootKeys(ctx(t), f.org.ID, p) })
	if len(keys) != concurrency+1 {
		t.Fatalf("%d keys, want %d", len(keys), concurrency+1)
	}
	active := 0
	for _, k := range keys {
		switch k.State {
		case store.KeyActive:
			active++
		case store.KeyRotated:
		default:
			t.Errorf("key %q is %q", k.KID, k.State)
		}
	}
	if active != 1 {
		t.Fatalf("%d active keys after concurrent rotations, want 1", active)
	}
}

// testConcurrentRetirement retires one rotated key from many goroutines:
// exactly one retires it, the others find it retired.
func testConcurrentRetirement(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	for round := range 4 {
		old := fmt.Appendf(nil, "k-%d", round)
		for _, kid := range [][]byte{old, fmt.Appendf(nil, "k-%d-next", round)} {
			_, err := s.RotateRootKey(ctx(t), store.NewRootKey{OrgID: f.org.ID, KID: kid, Sealed: store.SealedKey("x"), CreatedAt: t0})
			must(t, err)
		}
		errs := parallel(func(i int) error {
			retired, err := s.RetireRootKey(ctx(t), old, at(time.Minute))
			if err == nil && !retired {
				err = errRefused
			}
			return err
		})
		wantWins(t, fmt.Sprint("round ", round), errs, errRefused)
	}
}
