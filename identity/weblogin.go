package identity

// The browser login of `caveat auth login --web`: the CLI starts a flow,
// shows the user URL, and polls; the user logs in on the page; the poll
// then creates the session and hands it over, once.
//
// The flow holds no secret: only hashes of its two secrets and, once the
// user has logged in, the user id. The session is created when the poll
// collects it, so nothing that could be stolen from memory is kept.

import (
	"bytes"
	"container/list"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/caveatdev/caveat/internal/httpjson"
)

// UserInteractiveJSON is the user-interactive answer of spec §8.3.
type UserInteractiveJSON struct {
	UserURL string `json:"user_url"`
	PollURL string `json:"poll_url"`
}

// WebLoginResponse is the answer to POST /aaa/v1/sessions/web.
type WebLoginResponse struct {
	UserInteractive UserInteractiveJSON `json:"user_interactive"`
}

type flowKey [32]byte

// Labels keep the user secret, which the browser shows and keeps in its
// history, from ever working as the poll secret.
const (
	labelWebPoll = "caveat web login poll v1\x00"
	labelWebUser = "caveat web login user v1\x00"
)

func hashSecret(label, secret string) flowKey {
	return sha256.Sum256([]byte(label + secret))
}

func newSecret() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type webFlow struct {
	poll, user flowKey
	started    time.Time
	expires    time.Time
	addr       string // the client that started it, shown on the page
	userID     uint64 // 0 until the user logs in
	elem       *list.Element
}

// webFlows holds pending browser logins in memory, at most max. When it
// is full, start refuses until a flow is collected or expires: dropping
// the oldest would let anyone who starts logins wipe out everyone else's.
type webFlows struct {
	max int
	ttl time.Duration
	now func() time.Time

	mu     sync.Mutex
	order  *list.List // of *webFlow, oldest (first to expire) first
	byPoll map[flowKey]*webFlow
	byUser map[flowKey]*webFlow
}

func newWebFlows(max int, ttl time.Duration, now func() time.Time) *webFlows {
	return &webFlows{max: max, ttl: ttl, now: now, order: list.New(),
		byPoll: make(map[flowKey]*webFlow), byUser: make(map[flowKey]*webFlow)}
}

// start adds a flow and returns its poll and user secrets. When max live
// flows are pending, it adds nothing and returns a *limitedError saying
// when the oldest expires.
func (fs *webFlows) start(addr string) (pollSecret, userSecret string, err error) {
	now := fs.now()
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for fs.order.Len() > 0 && !fs.order.Front().Value.(*webFlow).expires.After(now) {
		fs.remove(fs.order.Front().Value.(*webFlow))
	}
	if fs.order.Len() >= fs.max {
		retry := fs.order.Front().Value.(*webFlow).expires.Sub(now)
		return "", "", &limitedError{retry: retry, msg: fmt.Sprintf(
			"the server holds its maximum of %d pending browser logins", fs.max)}
	}
	pollSecret, userSecret = newSecret(), newSecret()
	f := &webFlow{poll: hashSecret(labelWebPoll, pollSecret), user: hashSecret(labelWebUser, userSecret),
		started: now, expires: now.Add(fs.ttl), addr: addr}
	f.elem = fs.order.PushBack(f)
	fs.byPoll[f.poll] = f
	fs.byUser[f.user] = f
	return pollSecret, userSecret, nil
}

func (fs *webFlows) remove(f *webFlow) {
	fs.order.Remove(f.elem)
	delete(fs.byPoll, f.poll)
	delete(fs.byUser, f.user)
}

// byUserSecret returns a copy of the live flow with this user secret.
func (fs *webFlows) byUserSecret(secret string) (webFlow, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f, ok := fs.byUser[hashSecret(labelWebUser, secret)]
	if !ok || !f.expires.After(fs.now()) {
		return webFlow{}, false
	}
	return *f, true
}

// complete records that the user of the flow with this user secret logged
// in as uid. It fails if the flow is gone or already completed.
func (fs *webFlows) complete(secret string, uid uint64) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f, ok := fs.byUser[hashSecret(labelWebUser, secret)]
	if !ok || !f.expires.After(fs.now()) || f.userID != 0 {
		return false
	}
	f.userID = uid
	return true
}

// collect looks the flow up by its poll secret. A completed flow is
// removed and its user returned, once; found is false for no flow.
func (fs *webFlows) collect(secret string) (uid uint64, found bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f, ok := fs.byPoll[hashSecret(labelWebPoll, secret)]
	if !ok {
		return 0, false
	}
	if !f.expires.After(fs.now()) {
		fs.remove(f)
		return 0, false
	}
	if f.userID != 0 {
		fs.remove(f)
	}
	return f.userID, true
}

func (fs *webFlows) len() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.order.Len()
}

// startWebLogin serves POST /aaa/v1/sessions/web. The body may be empty
// or {}.
func (s *Service) startWebLogin(w http.ResponseWriter, r *http.Request) (int, any, error) {
	if err := decodeEmpty(w, r); err != nil {
		return 0, nil, err
	}
	addr := s.clientAddr(r)
	if ok, retry := s.byAddress.allow(addr); !ok {
		return 0, nil, &limitedError{retry: retry}
	}
	pollSecret, userSecret, err := s.web.start(addr)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, WebLoginResponse{UserInteractive: UserInteractiveJSON{
		UserURL: s.loc + cliPagePrefix + userSecret,
		PollURL: s.loc + webPollPrefix + pollSecret,
	}}, nil
}

// decodeEmpty accepts an empty body or an empty JSON object.
func decodeEmpty(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, httpjson.MaxBody))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return httpjson.Errorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", httpjson.MaxBody)
		}
		return httpjson.Errorf(http.StatusBadRequest, "reading request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	var v struct{}
	return httpjson.Unmarshal(body, &v)
}

// pollWebLogin serves GET /aaa/v1/sessions/web/poll/{secret}, in the
// manner of spec §8.3: 202 until the user has logged in, then 200 with the
// session, then 404.
func (s *Service) pollWebLogin(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	uid, found := s.web.collect(r.PathValue("secret"))
	if !found {
		return 0, nil, httpjson.Errorf(http.StatusNotFound, "not found")
	}
	if uid == 0 {
		return http.StatusAccepted, map[string]string{"error": "not ready"}, nil
	}
	ctx := r.Context()
	u, err := s.cfg.Store.GetUser(ctx, uid)
	if err != nil {
		return 0, nil, fmt.Errorf("web login: %w", err)
	}
	resp, err := s.newSession(ctx, u)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, resp, nil
}

// cliPage serves the login page of a CLI browser login, GET and POST
// /aaa/v1/login/cli/{secret}.
func (s *Service) cliPage(w http.ResponseWriter, r *http.Request) {
	secret := r.PathValue("secret")
	f, ok := s.web.byUserSecret(secret)
	if !ok {
		s.page(w, http.StatusNotFound, page{Title: "Login link not valid", Kind: "error",
			Message: "This login link has expired or has already been used. Start again from the command line."})
		return
	}
	p := page{
		Title: "Log in to caveat",
		Detail: fmt.Sprintf("A command-line login (caveat auth login --web) started at %s from %s is waiting for you. "+
			"Log in only if you started it: it will receive a session for your account.",
			f.started.UTC().Format("15:04 MST on 2 Jan 2006"), f.addr),
		Form: true,
	}
	if r.Method == http.MethodGet {
		s.page(w, http.StatusOK, p)
		return
	}
	u, ok := s.pageLogin(w, r, &p)
	if !ok {
		return
	}
	if !s.web.complete(secret, u.ID) {
		s.page(w, http.StatusConflict, page{Title: "Login link not valid", Kind: "error",
			Message: "This login has already been completed, or has expired."})
		return
	}
	s.page(w, http.StatusOK, page{Title: "Logged in", Kind: "ok",
		Message: "You are logged in as " + u.Email + ". You can close this window and return to the command line."})
}
