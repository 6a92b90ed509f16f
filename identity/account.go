package identity

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/caveatdev/caveat/api"
	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/store"
)

// Limits on passwords.
const (
	// MinPasswordLen is the shortest password accepted at signup, in
	// characters.
	MinPasswordLen = 8
	// MaxPasswordLen is the longest password accepted, in bytes.
	MaxPasswordLen = 1024
)

// createAccount creates the account a signup asks for, with its first
// organization when it names one (or, for the server's first user,
// always), or with the invitation's membership. r is the request the
// signup came in, for its client address and context.
func (s *Service) createAccount(r *http.Request, req api.SignupRequest) (api.SignupResult, error) {
	// An invitation opens signup even when it is closed.
	if req.Invitation != "" {
		return s.signupInvited(r, req)
	}
	// Closed signup still lets the first user in, who administers the
	// server's first organization; once a user is known to exist (users
	// are never deleted) it refuses at once.
	if !s.cfg.SignupOpen && s.hasUsers.Load() {
		return api.SignupResult{}, errSignupClosed
	}
	email := strings.TrimSpace(req.Email)
	if err := checkEmail(email); err != nil {
		return api.SignupResult{}, err
	}
	if err := checkNewPassword(req.Password); err != nil {
		return api.SignupResult{}, err
	}
	slug := strings.ToLower(strings.TrimSpace(req.Organization))
	if req.Organization != "" && !store.ValidSlug(slug) {
		return api.SignupResult{}, fault.Errorf(fault.Invalid,
			`"organization" must be 1 to 63 letters, digits and dashes, not starting or ending with a dash`)
	}
	if err := s.byAddress.take(r.Context(), s.clientAddr(r)); err != nil {
		return api.SignupResult{}, err
	}
	hash, err := HashPassword(req.Password, s.cfg.Argon2)
	if err != nil {
		return api.SignupResult{}, err
	}
	ctx := r.Context()
	nu := store.NewUser{Email: email, PasswordHash: hash, CreatedAt: s.cfg.Now()}

	// The first user of a server gets an organization, named as asked or
	// after the email, to be its admin.
	firstSlug := slug
	if firstSlug == "" {
		firstSlug = slugFromEmail(email)
	}
	u, o, err := s.cfg.Store.CreateUserWithOrganization(ctx, store.Signup{User: nu, OrganizationSlug: firstSlug, FirstUserOnly: true})
	if errors.Is(err, store.ErrNotFirst) {
		s.hasUsers.Store(true)
		if !s.cfg.SignupOpen {
			return api.SignupResult{}, errSignupClosed
		}
		if slug != "" {
			u, o, err = s.cfg.Store.CreateUserWithOrganization(ctx, store.Signup{User: nu, OrganizationSlug: slug})
		} else {
			u, err = s.cfg.Store.CreateUser(ctx, nu)
			o = store.Organization{}
		}
	}
	switch {
	case errors.Is(err, store.ErrExists):
		return api.SignupResult{}, s.signupConflict(ctx, email, slug)
	case errors.Is(err, store.ErrInvalid):
		return api.SignupResult{}, fault.Errorf(fault.Invalid, "%v", err)
	case err != nil:
		return api.SignupResult{}, fmt.Errorf("signup: %w", err)
	}

	resp := api.SignupResult{User: api.User{ID: u.ID, Email: u.Email}}
	if o.ID != 0 {
		// An organization needs a root key before anything can be minted
		// for it; the authority gives one to the organizations it creates.
		if _, err := s.cfg.Keyring.Rotate(ctx, o.ID); err != nil {
			return api.SignupResult{}, fmt.Errorf("signup: first root key of organization %d: %w", o.ID, err)
		}
		resp.Organization = &api.Organization{ID: o.ID, Slug: o.Slug, Role: string(store.RoleAdmin)}
		s.cfg.Logger.InfoContext(ctx, "signup", "user", u, "org", o.ID)
	} else {
		s.cfg.Logger.InfoContext(ctx, "signup", "user", u)
	}
	return resp, nil
}

// errSignupClosed refuses a signup when Config.SignupOpen is false and
// the server has its first user.
var errSignupClosed = fault.Errorf(fault.Denied, "signup is closed on this server")

// signupConflict says which of the email and the slug is taken.
func (s *Service) signupConflict(ctx context.Context, email, slug string) error {
	_, err := s.cfg.Store.GetUserByEmail(ctx, email)
	if err == nil {
		return fault.Errorf(fault.Conflict, "an account with this email already exists")
	}
	if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("signup: %w", err)
	}
	if slug == "" {
		// Only the first signup names an organization by itself, on an
		// empty store; another signup raced it.
		return fault.Errorf(fault.Conflict, "the account or organization already exists; try again")
	}
	return fault.Errorf(fault.Conflict, "organization %q already exists", slug)
}

// checkEmail is a sanity check, not a validation of RFC 5322: one "@"
// between a local part and a domain, no spaces or control characters, and
// the store's length limit.
func checkEmail(e string) error {
	bad := func(why string) error {
		return fault.Errorf(fault.Invalid, `"email" %s`, why)
	}
	if e == "" {
		return bad("is required")
	}
	if len(e) > store.MaxEmailLen {
		return bad(fmt.Sprintf("is longer than %d bytes", store.MaxEmailLen))
	}
	if !utf8.ValidString(e) || strings.ContainsFunc(e, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune(`<>()[]\,;:"`, r)
	}) {
		return bad("is not an email address: it contains spaces, control characters or punctuation not allowed there")
	}
	local, domain, ok := strings.Cut(e, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") {
		return bad("is not an email address: want one @ between a name and a domain")
	}
	if len(local) > 64 {
		return bad("is not an email address: the part before @ is longer than 64 bytes")
	}
	if strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return bad("is not an email address: its domain is malformed")
	}
	return nil
}

func checkNewPassword(p string) error {
	if n := utf8.RuneCountInString(p); n < MinPasswordLen {
		return fault.Errorf(fault.Invalid, `"password" must be at least %d characters long`, MinPasswordLen)
	}
	if len(p) > MaxPasswordLen {
		return fault.Errorf(fault.Invalid, `"password" must be at most %d bytes long`, MaxPasswordLen)
	}
	return nil
}

// slugFromEmail names the first user's organization after the local part
// of the email: lowercased, every run of other characters turned into one
// "-", trimmed of dashes and cut to 63 bytes; "org" if nothing is left.
func slugFromEmail(email string) string {
	local, _, _ := strings.Cut(email, "@")
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(local) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			if b.Len() >= 63 {
				break
			}
			continue
		}
		dash = true
	}
	slug := strings.Trim(b.String(), "-")
	if slug == "" {
		return "org"
	}
	return slug
}

// errBadLogin is the one answer to a wrong email or a wrong password, so
// that it does not tell which.
var errBadLogin = fault.Errorf(fault.Unauthenticated, "invalid email or password")

// authenticate checks a password login, under the rate limits. It costs
// one argon2id hash whether or not the account exists.
func (s *Service) authenticate(ctx context.Context, r *http.Request, email, password string) (store.User, error) {
	addr := s.clientAddr(r)
	if ok, retry, err := s.byAddress.allow(ctx, addr); err != nil {
		return store.User{}, err
	} else if !ok {
		s.cfg.Logger.WarnContext(ctx, "login rate limited", "by", "address", "addr", addr)
		return store.User{}, &limitedError{retry: retry}
	}
	email = strings.TrimSpace(email)
	if email == "" || len(email) > store.MaxEmailLen || len(password) > MaxPasswordLen {
		// Nothing of this kind was ever accepted at signup.
		s.checkPassword(s.dummyHash, "")
		return store.User{}, errBadLogin
	}
	key := store.EmailKey(email)
	if ok, retry, err := s.byAccount.allow(ctx, key); err != nil {
		return store.User{}, err
	} else if !ok {
		s.cfg.Logger.WarnContext(ctx, "login rate limited", "by", "account", "addr", addr)
		return store.User{}, &limitedError{retry: retry}
	}
	u, err := s.cfg.Store.GetUserByEmail(ctx, email)
	if errors.Is(err, store.ErrNotFound) {
		s.checkPassword(s.dummyHash, password)
		s.cfg.Logger.InfoContext(ctx, "login failed", "reason", "unknown account", "addr", addr)
		return store.User{}, errBadLogin
	}
	if err != nil {
		return store.User{}, fmt.Errorf("login: %w", err)
	}
	ok, err := s.checkPassword(u.PasswordHash, password)
	if err != nil {
		return store.User{}, fmt.Errorf("login: password hash of user %d: %w", u.ID, err)
	}
	if !ok {
		s.cfg.Logger.InfoContext(ctx, "login failed", "reason", "wrong password", "user", u, "addr", addr)
		return store.User{}, errBadLogin
	}
	// The account's own failures stop counting once its owner is in.
	if err := s.byAccount.reset(ctx, key); err != nil {
		// The login stands; the account's failures keep counting.
		s.cfg.Logger.WarnContext(ctx, "clearing the account's failed logins", "user", u, "err", err)
	}
	return u, nil
}

// newSession starts a session for u and mints its token.
func (s *Service) newSession(ctx context.Context, u store.User) (*api.Session, error) {
	now := s.cfg.Now()
	ms, err := s.cfg.Keyring.MintSession(u.ID, now, now.Add(s.cfg.SessionTTL), s.cfg.TokenLocation, s.cfg.Location)
	if err != nil {
		return nil, err
	}
	sess := store.Session{ID: ms.ID, UserID: u.ID, CreatedAt: now, ExpiresAt: ms.Expires}
	if err := s.cfg.Store.CreateSession(ctx, sess); err != nil {
		return nil, fmt.Errorf("create session: %w", err)
	}
	s.cfg.Logger.InfoContext(ctx, "login", "session", sess)
	return &api.Session{
		SessionID: ms.ID,
		Secret:    ms.Secret,
		Token:     ms.Token.String(),
		ExpiresAt: ms.Expires.UTC(),
		User:      api.User{ID: u.ID, Email: u.Email},
	}, nil
}

// endSession revokes the session of an "Authorization: Bearer <session
// secret>" value.
func (s *Service) endSession(ctx context.Context, header string) error {
	now := s.cfg.Now()
	sess, err := s.session(ctx, header, now)
	if err != nil {
		return err
	}
	if _, err := s.cfg.Store.RevokeSession(ctx, sess.ID, now); err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	if s.cfg.OnSessionEnd != nil {
		s.cfg.OnSessionEnd(sess.ID)
	}
	s.cfg.Logger.InfoContext(ctx, "logout", "session", sess)
	return nil
}
