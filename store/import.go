package store

import (
	"context"
	"fmt"
)

// TokenImport records many tokens at once, for tools that fill a store
// (the scale harness of package loadtest, a migration from another
// registry): one transaction instead of one per token.
type TokenImport interface {
	// ImportTokens records ts in one atomic step: all of them, or none.
	// Each token follows the rules of [Tokens.CreateToken], except that it
	// may be revoked already (RevokedAt set, not before CreatedAt): the
	// revoked ones are appended to the revocation feed in the order of ts,
	// as if revoked one after the other. It fails with ErrExists when an
	// id is taken (in the store or twice in ts), with ErrNotFound when an
	// organization, an app of that organization or a creator does not
	// exist, and with ErrInvalid when a token does not validate.
	ImportTokens(ctx context.Context, ts []Token) error
}

// ValidateImport reports, wrapping [ErrInvalid], a token that
// [TokenImport.ImportTokens] refuses: one that does not validate as a new
// record once its revocation is set aside, or that is revoked before its
// creation.
func (t Token) ValidateImport() error {
	v := t
	v.RevokedAt = Token{}.RevokedAt
	if err := v.Validate(); err != nil {
		return err
	}
	if !t.RevokedAt.IsZero() {
		if err := checkTime("revoked at", t.RevokedAt); err != nil {
			return err
		}
		if t.RevokedAt.Before(t.CreatedAt) {
			return fmt.Errorf("token revoked before its creation: %w", ErrInvalid)
		}
	}
	return nil
}
