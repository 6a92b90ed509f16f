package store

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestErrorHierarchy(t *testing.T) {
	for _, tc := range []struct {
		err     error
		is, not []error
	}{
		{ErrExists, []error{ErrExists, ErrConflict}, []error{ErrNotFound, ErrInvalid, ErrNotFirst}},
		{ErrNotFirst, []error{ErrNotFirst, ErrConflict}, []error{ErrNotFound, ErrInvalid, ErrExists}},
		{ErrConflict, []error{ErrConflict}, []error{ErrExists, ErrNotFirst, ErrNotFound, ErrInvalid}},
		{ErrNotFound, []error{ErrNotFound}, []error{ErrConflict, ErrInvalid}},
		{ErrInvalid, []error{ErrInvalid}, []error{ErrConflict, ErrNotFound}},
	} {
		wrapped := fmt.Errorf("sqlite: create user: email: %w", tc.err)
		for _, target := range tc.is {
			if !errors.Is(wrapped, target) {
				t.Errorf("%q is not %q", wrapped, target)
			}
		}
		for _, target := range tc.not {
			if errors.Is(wrapped, target) {
				t.Errorf("%q is %q", wrapped, target)
			}
		}
	}
	if got := fmt.Errorf("create user: email: %w", ErrExists).Error(); got != "create user: email: already exists" {
		t.Errorf("message %q", got)
	}
}

func TestValidate(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	good := Token{ID: "6ba7b810-9dad-11d1-80b4-00c04fd430c8", Name: "n", Profile: "deploy", OrgID: 1, CreatedBy: 1, CreatedAt: t0}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"user", NewUser{Email: "a@b", PasswordHash: "h", CreatedAt: t0}.Validate()},
		{"organization", NewOrganization{Slug: "acme", CreatedAt: t0}.Validate()},
		{"membership", Membership{OrgID: 1, UserID: 1, Role: RoleMember, CreatedAt: t0}.Validate()},
		{"session", Session{ID: "s", UserID: 1, CreatedAt: t0, ExpiresAt: t0.Add(time.Second)}.Validate()},
		{"root key", NewRootKey{OrgID: 1, KID: []byte{1}, Sealed: SealedKey{0}, CreatedAt: t0}.Validate()},
		{"app", NewApp{OrgID: 1, Name: "a", CreatedAt: t0}.Validate()},
		{"token", good.Validate()},
	} {
		if tc.err != nil {
			t.Errorf("valid %s refused: %v", tc.name, tc.err)
		}
	}
	bad := good
	bad.ExpiresAt = t0.Add(-time.Second)
	for _, err := range []error{
		NewUser{Email: strings.Repeat("a", MaxEmailLen+1), PasswordHash: "h", CreatedAt: t0}.Validate(),
		NewOrganization{Slug: "a\xc3", CreatedAt: t0}.Validate(),
		Membership{Role: "owner", CreatedAt: t0}.Validate(),
		Session{ID: "s", CreatedAt: t0, ExpiresAt: t0}.Validate(),
		NewRootKey{KID: []byte{1}, CreatedAt: t0}.Validate(),
		NewApp{Name: "a", CreatedAt: time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC)}.Validate(),
		bad.Validate(),
		CheckTime("t", time.Time{}),
		CheckPasswordHash(""),
	} {
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("error %v, want ErrInvalid", err)
		}
	}
}

func TestEmailKey(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"Ada@Example.COM", "ada@example.com"},
		{"ÉMILE@example.com", "émile@example.com"},
	} {
		if EmailKey(tc.a) != EmailKey(tc.b) {
			t.Errorf("EmailKey(%q) = %q, EmailKey(%q) = %q", tc.a, EmailKey(tc.a), tc.b, EmailKey(tc.b))
		}
	}
	if EmailKey(" a@b") == EmailKey("a@b") {
		t.Error("EmailKey trims spaces; the contract says it changes nothing but case")
	}
}

func TestValidTokenID(t *testing.T) {
	for id, want := range map[string]bool{
		"6ba7b810-9dad-11d1-80b4-00c04fd430c8":          true,
		"6BA7B810-9DAD-11D1-80B4-00C04FD430C8":          false,
		"{6ba7b810-9dad-11d1-80b4-00c04fd430c8}":        false,
		"urn:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8": false,
		"6ba7b8109dad11d180b400c04fd430c8":              false,
		"":                                              false,
	} {
		if got := ValidTokenID(id); got != want {
			t.Errorf("ValidTokenID(%q) = %v, want %v", id, got, want)
		}
	}
}

// TestLogValues checks that logging a record does not log its secrets.
func TestLogValues(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	log.Info("x",
		"user", User{ID: 7, Email: "secret@example.com", PasswordHash: "$argon2id$secret"},
		"new", NewUser{Email: "secret@example.com", PasswordHash: "$argon2id$secret"},
		"session", Session{ID: "secret-session", UserID: 7},
		"key", SealedKey("secret-key-bytes"),
		"root", RootKey{KID: []byte("k1"), OrgID: 3, Sealed: SealedKey("secret-key-bytes"), State: KeyActive},
	)
	out := buf.String()
	for _, secret := range []string{"secret@example.com", "$argon2id$secret", "secret-session", "secret-key-bytes"} {
		if strings.Contains(out, secret) {
			t.Errorf("log line %q holds %q", out, secret)
		}
	}
	if !strings.Contains(out, "user.id=7") || !strings.Contains(out, "root.kid=6b31") {
		t.Errorf("log line %q lacks the user id", out)
	}
}
