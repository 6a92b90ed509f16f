package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/caveatdev/caveat/store"
	"github.com/caveatdev/caveat/store/storetest"
	"github.com/google/uuid"
)

// TestEveryFeedWriterNotifies: each way of appending to the revocation
// feed (a token, a branch, a removed member's tokens, an import of a
// revoked token) wakes a listener when it commits.
func TestEveryFeedWriterNotifies(t *testing.T) {
	db, _ := mustOpen(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	woken := make(chan struct{}, 16)
	listenCtx, stop := context.WithCancel(ctx)
	listened := make(chan error, 1)
	go func() {
		listened <- db.ListenRevocations(listenCtx, func() { woken <- struct{}{} })
	}()
	defer func() {
		stop()
		if err := <-listened; err != nil {
			t.Errorf("ListenRevocations: %v", err)
		}
	}()
	// A notification sent before LISTEN has run is lost: wait until the
	// listener's session has run it.
	for {
		var ready bool
		err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND query = $1 AND state = 'idle')`, "LISTEN "+revocationChannel).Scan(&ready)
		if err != nil {
			t.Fatal(err)
		}
		if ready {
			break
		}
		select {
		case err := <-listened:
			t.Fatalf("ListenRevocations returned early: %v", err)
		case <-ctx.Done():
			t.Fatal("the listener never ran LISTEN")
		case <-time.After(10 * time.Millisecond):
		}
	}

	t0 := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	admin := storetest.MustUser(t, db, "admin@example.com")
	member := storetest.MustUser(t, db, "member@example.com")
	org := storetest.MustOrganization(t, db, "acme", admin.ID)
	if err := db.AddMember(ctx, store.Membership{OrgID: org.ID, UserID: member.ID, Role: store.RoleMember, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	token := func(by uint64) store.Token {
		tok := store.Token{ID: uuid.NewString(), Name: "n", Profile: "deploy", OrgID: org.ID, CreatedBy: by, CreatedAt: t0}
		if err := db.CreateToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tok, branched, members := token(admin.ID), token(admin.ID), token(member.ID)
	imported := store.Token{ID: uuid.NewString(), Name: "n", Profile: "deploy", OrgID: org.ID, CreatedBy: admin.ID,
		CreatedAt: t0, RevokedAt: t0.Add(time.Second)}

	for _, w := range []struct {
		name  string
		write func() error
	}{
		{"RevokeToken", func() error { _, err := db.RevokeToken(ctx, tok.ID, t0); return err }},
		{"RevokeBranch", func() error {
			_, err := db.RevokeBranch(ctx, store.RevokedBranch{TokenID: branched.ID, Branch: store.BranchID{1}, RevokedAt: t0})
			return err
		}},
		{"RemoveMemberWithTokens", func() error {
			toks, err := db.RemoveMemberWithTokens(ctx, store.Removal{OrgID: org.ID, UserID: member.ID, At: t0})
			if err == nil && (len(toks) != 1 || toks[0].ID != members.ID) {
				t.Errorf("removal revoked %+v, want the member's token", toks)
			}
			return err
		}},
		{"ImportTokens", func() error { return db.ImportTokens(ctx, []store.Token{imported}) }},
	} {
		if err := w.write(); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		select {
		case <-woken:
		case err := <-listened:
			t.Fatalf("ListenRevocations returned during %s: %v", w.name, err)
		case <-ctx.Done():
			t.Fatalf("%s committed a feed entry, but no listener was notified", w.name)
		}
	}
}
