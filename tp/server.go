package tp

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/internal/httpjson"
)

// DecideFunc is the application's half of a discharger: given an init
// request whose ticket opened, it says what to answer. It is called once
// per init request, concurrently with other calls.
//
// The contract:
//
//   - It alone decides whether to discharge. The server does not check
//     req.Ticket.Caveats; the application clears them (for example against
//     an auth.DischargeRequest built from the principal's session) and
//     refuses when they do not pass.
//   - It returns one of Discharge, Refuse, Poll or UserInteractive. For Poll
//     and UserInteractive it should remember req.Flow, the ID with which it
//     later calls Complete or Fail.
//   - An error is a failure of the application (a database is down), not a
//     refusal: the client gets 500 "internal error" and the error is logged,
//     so it must not hold a secret. Refuse the client with Refuse.
type DecideFunc func(ctx context.Context, req *Request) (Decision, error)

// Request is an init request whose ticket opened.
type Request struct {
	// HTTP is the init request, for its credentials (Authorization, cookies)
	// and its address. Its body has been read.
	HTTP *http.Request
	// Ticket is the opened ticket; Ticket.Caveats are the conditions to
	// check before discharging.
	Ticket *caveat.Ticket
	// Flow is the ID the flow gets if the decision is Poll or
	// UserInteractive.
	Flow FlowID
	// Bound reports whether the client asked for the discharge to be bound
	// to its parent token, which the server then does. A discharger that
	// wants every discharge bound refuses requests without it.
	Bound bool
}

type decisionKind uint8

const (
	noDecision decisionKind = iota
	kindDischarge
	kindRefuse
	kindPoll
	kindUser
)

// Decision is the answer to an init request; make one with Discharge,
// Refuse, Poll or UserInteractive. The zero Decision is an application bug,
// answered with 500.
type Decision struct {
	kind    decisionKind
	caveats []caveat.Caveat
	status  int
	msg     string
	retry   time.Duration // Retry-After of a Throttle
}

// Discharge answers with a discharge now (201 {"discharge": "fm2_…"}),
// carrying caveats: typically attestations such as auth.FlyioUserID.
func Discharge(caveats ...caveat.Caveat) Decision {
	return Decision{kind: kindDischarge, caveats: caveats}
}

// Refuse answers with status and {"error": msg}. A status outside 400–599
// becomes 403; an empty msg becomes the status text.
func Refuse(status int, msg string) Decision {
	if status < 400 || status > 599 {
		status = http.StatusForbidden
	}
	if msg == "" {
		msg = strings.ToLower(http.StatusText(status))
	}
	return Decision{kind: kindRefuse, status: status, msg: msg}
}

// Throttle answers 429 with a Retry-After header of retry (whole seconds,
// rounded up, at least 1) and {"error": msg}: the application's rate limit
// refuses the request for now.
func Throttle(retry time.Duration, msg string) Decision {
	d := Refuse(http.StatusTooManyRequests, msg)
	d.retry = max(retry, time.Second)
	return d
}

// Poll answers 201 {"poll_url": …}: the application finishes the flow
// later, with Complete or Fail, and the client polls until it does.
func Poll() Decision { return Decision{kind: kindPoll} }

// UserInteractive answers 201 {"user_interactive": {"user_url", "poll_url"}}:
// the client sends the user to the user URL (Config.UserURLPrefix and the
// user secret), where the application's page calls LookupUser, then Complete
// or Fail.
func UserInteractive() Decision { return Decision{kind: kindUser} }

// Config configures a Server.
type Config struct {
	// Location is the discharger's location, as it appears in third-party
	// caveats: an absolute http or https URL, whose path the server's
	// endpoints are under. Required.
	Location string
	// Keys open tickets, tried in order: the current key, and retired keys
	// kept so that tickets sealed before a rotation still open. Required.
	Keys []caveat.EncryptionKey
	// Decide is the application's decision. Required.
	Decide DecideFunc
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Store holds pending flows; a NewMemoryStore(0, Now) when nil.
	Store FlowStore
	// FlowTTL is how long a poll or user-interactive flow waits to be
	// finished and collected; DefaultFlowTTL when zero.
	FlowTTL time.Duration
	// UserURLPrefix, followed by the user secret, is the user URL of a
	// user-interactive flow: an absolute http(s) URL, or a path (starting
	// with "/") on the location's host. Required for UserInteractive.
	UserURLPrefix string
	// Validity, when positive, gives every discharge a ValidityWindow from
	// a minute before it is built (for clock skew) to Validity after.
	Validity time.Duration
	// Log receives internal errors; slog.Default() when nil. Nothing logged
	// holds a ticket, a discharge or a secret.
	Log *slog.Logger
}

// DefaultFlowTTL is the lifetime of a flow when Config.FlowTTL is zero.
const DefaultFlowTTL = 15 * time.Minute

// skew is how far a discharge's ValidityWindow reaches back, so that a
// first party whose clock is a little behind accepts it at once.
const skew = time.Minute

// Server is the HTTP side of a discharger (spec §8): it serves
//
//	POST <location path>/.well-known/macfly/3p
//	GET  <location path>/.well-known/macfly/3p/poll/<poll secret>
//
// and answers everything else with 404, so mount it on those two paths (or
// on the location's path prefix) and serve the user URLs with the
// application's own handler. It matches the paths by their ending, so it
// also works behind http.StripPrefix.
type Server struct {
	location   string
	initURL    string
	keys       []caveat.EncryptionKey
	decide     DecideFunc
	now        func() time.Time
	store      FlowStore
	ttl        time.Duration
	userPrefix string
	validity   time.Duration
	log        *slog.Logger
}

var _ http.Handler = (*Server)(nil)

// NewServer checks c and returns a Server.
func NewServer(c Config) (*Server, error) {
	loc, err := url.Parse(c.Location)
	if err != nil || !httpURL(loc) {
		return nil, fmt.Errorf("tp server: location %q is not an absolute http(s) URL", c.Location)
	}
	if loc.RawQuery != "" || loc.Fragment != "" {
		return nil, fmt.Errorf("tp server: location %q has a query or fragment", c.Location)
	}
	if len(c.Keys) == 0 {
		return nil, errors.New("tp server: no ticket keys")
	}
	if c.Decide == nil {
		return nil, errors.New("tp server: no Decide function")
	}
	s := &Server{
		location: c.Location,
		initURL:  InitURL(c.Location),
		keys:     append([]caveat.EncryptionKey(nil), c.Keys...),
		decide:   c.Decide,
		now:      c.Now,
		store:    c.Store,
		ttl:      c.FlowTTL,
		validity: c.Validity,
		log:      c.Log,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.store == nil {
		s.store = NewMemoryStore(0, s.now)
	}
	if s.ttl <= 0 {
		s.ttl = DefaultFlowTTL
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if c.UserURLPrefix != "" {
		p, err := url.Parse(c.UserURLPrefix)
		switch {
		case err != nil:
			return nil, fmt.Errorf("tp server: user URL prefix: %w", err)
		case httpURL(p):
			s.userPrefix = c.UserURLPrefix
		case p.Scheme == "" && p.Host == "" && strings.HasPrefix(p.Path, "/"):
			s.userPrefix = loc.Scheme + "://" + loc.Host + c.UserURLPrefix
		default:
			return nil, fmt.Errorf("tp server: user URL prefix %q is neither an absolute http(s) URL nor a path", c.UserURLPrefix)
		}
	}
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if strings.HasSuffix(p, InitPath) {
		s.serveInit(w, r)
		return
	}
	if i := strings.Index(p, PollPath+"/"); i >= 0 {
		s.servePoll(w, r, p[i+len(PollPath)+1:])
		return
	}
	s.write(w, http.StatusNotFound, &response{Error: "not found"})
}

func (s *Server) serveInit(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.write(w, http.StatusMethodNotAllowed, &response{Error: "method " + r.Method + " not allowed: use POST"})
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			s.write(w, http.StatusUnsupportedMediaType, &response{Error: "content type must be application/json"})
			return
		}
	}
	var req initRequest
	if err := httpjson.Decode(w, r, &req, MaxRequestBody); err != nil {
		status, msg := http.StatusBadRequest, err.Error()
		var he *httpjson.Error
		if errors.As(err, &he) {
			status, msg = he.Status, he.Msg
		}
		s.write(w, status, &response{Error: msg})
		return
	}
	ticket, binding, err := req.decode()
	if err != nil {
		s.write(w, http.StatusBadRequest, &response{Error: err.Error()})
		return
	}
	t, err := s.open(ticket)
	if err != nil {
		s.write(w, http.StatusBadRequest, &response{Error: err.Error()})
		return
	}

	pollSecret := newSecret()
	id := secretID(labelPoll, pollSecret)
	d, err := s.decide(r.Context(), &Request{HTTP: r, Ticket: t, Flow: id, Bound: binding != nil})
	if err != nil {
		s.internal(w, r, "decide", err)
		return
	}
	switch d.kind {
	case kindDischarge:
		tok, err := s.build(t, binding, caveat.NewCaveatSet(d.caveats...))
		if err != nil {
			s.internal(w, r, "discharge", err)
			return
		}
		s.write(w, http.StatusCreated, &response{Discharge: tok})
	case kindRefuse:
		if d.retry > 0 {
			w.Header().Set("Retry-After", strconv.FormatInt(RetrySeconds(d.retry), 10))
		}
		s.write(w, d.status, &response{Error: d.msg})
	case kindPoll:
		f := &Flow{ID: id, Ticket: ticket, Binding: binding, Expires: s.now().Add(s.ttl)}
		if err := s.store.Put(r.Context(), f); err != nil {
			s.storeFailed(w, r, err)
			return
		}
		s.write(w, http.StatusCreated, &response{PollURL: s.pollURL(pollSecret)})
	case kindUser:
		if s.userPrefix == "" {
			s.internal(w, r, "decide", errors.New("a user-interactive decision needs Config.UserURLPrefix"))
			return
		}
		userSecret := newSecret()
		f := &Flow{ID: id, UserKey: secretID(labelUser, userSecret), Ticket: ticket, Binding: binding, Expires: s.now().Add(s.ttl)}
		if err := s.store.Put(r.Context(), f); err != nil {
			s.storeFailed(w, r, err)
			return
		}
		s.write(w, http.StatusCreated, &response{UserInteractive: &userInteractive{
			UserURL: s.userPrefix + userSecret,
			PollURL: s.pollURL(pollSecret),
		}})
	default:
		s.internal(w, r, "decide", errors.New("Decide returned the zero Decision"))
	}
}

// decode checks the fields of an init request.
func (req *initRequest) decode() (ticket, binding []byte, err error) {
	if req.Ticket == "" {
		return nil, nil, errors.New(`missing "ticket"`)
	}
	ticket, err = base64.StdEncoding.Strict().DecodeString(req.Ticket)
	if err != nil {
		return nil, nil, errors.New(`"ticket" is not standard padded base64`)
	}
	if req.ParentBinding == "" {
		return ticket, nil, nil
	}
	binding, err = base64.StdEncoding.Strict().DecodeString(req.ParentBinding)
	if err != nil {
		return nil, nil, errors.New(`"parent_binding" is not standard padded base64`)
	}
	if len(binding) < 16 || len(binding) > 32 {
		return nil, nil, fmt.Errorf(`"parent_binding" must be 16 to 32 bytes, not %d`, len(binding))
	}
	return ticket, binding, nil
}

// open opens a ticket with the first key that fits. Its error is meant for
// the client: it names the problem and quotes nothing.
func (s *Server) open(ticket []byte) (*caveat.Ticket, error) {
	var malformed error
	for _, k := range s.keys {
		t, err := caveat.OpenTicket(k, ticket)
		if err == nil {
			return t, nil
		}
		if malformed == nil && errors.Is(err, caveat.ErrMalformed) {
			malformed = err
		}
	}
	if malformed != nil {
		return nil, fmt.Errorf("ticket decrypts but does not decode: %v", malformed)
	}
	return nil, errors.New("ticket does not decrypt with this third party's keys: it is damaged, or it is for another third party")
}

// build makes a fresh discharge for t: caveats, then the ValidityWindow of
// Config.Validity and the parent binding. Encoding finalises it.
func (s *Server) build(t *caveat.Ticket, binding []byte, cs caveat.CaveatSet) (string, error) {
	d, err := t.Discharge(s.location)
	if err != nil {
		return "", fmt.Errorf("mint discharge: %w", err)
	}
	if err := d.AddRaw(cs...); err != nil {
		return "", fmt.Errorf("discharge caveats: %w", err)
	}
	if s.validity > 0 {
		now := s.now()
		vw := &caveat.ValidityWindow{NotBefore: now.Add(-skew).Unix(), NotAfter: now.Add(s.validity).Unix()}
		if err := d.Add(vw); err != nil {
			return "", fmt.Errorf("discharge validity: %w", err)
		}
	}
	if len(binding) > 0 {
		b := caveat.BindToParentToken(binding)
		if err := d.Add(&b); err != nil {
			return "", fmt.Errorf("bind discharge: %w", err)
		}
	}
	return d.String(), nil
}

func (s *Server) pollURL(secret string) string {
	return s.initURL + "/poll/" + secret
}

func (s *Server) servePoll(w http.ResponseWriter, r *http.Request, secret string) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		s.write(w, http.StatusMethodNotAllowed, &response{Error: "method " + r.Method + " not allowed: use GET"})
		return
	}
	if !validSecret(secret) {
		s.write(w, http.StatusNotFound, &response{Error: "not found"})
		return
	}
	ctx := r.Context()
	id := secretID(labelPoll, secret)
	f, err := s.store.Get(ctx, id)
	if err == nil && subtle.ConstantTimeCompare(f.ID[:], id[:]) != 1 {
		err = ErrNotFound
	}
	if errors.Is(err, ErrNotFound) {
		s.write(w, http.StatusNotFound, &response{Error: "not found"})
		return
	}
	if err != nil {
		s.internal(w, r, "store", err)
		return
	}
	if f.State == Pending {
		s.write(w, http.StatusAccepted, &response{Error: "not ready"})
		return
	}
	// The flow is finished: whoever deletes it answers, once.
	if err := s.store.Delete(ctx, id); errors.Is(err, ErrNotFound) {
		s.write(w, http.StatusNotFound, &response{Error: "not found"})
		return
	} else if err != nil {
		s.internal(w, r, "store", err)
		return
	}
	if f.State != Discharged {
		msg := f.Error
		if msg == "" {
			msg = "discharge refused"
		}
		s.write(w, http.StatusOK, &response{Error: msg})
		return
	}
	tok, err := s.buildStored(f)
	if err != nil {
		// The flow is gone either way; tell the client it failed, rather
		// than leave it polling a 404.
		s.log.ErrorContext(ctx, "tp: building a discharge for a finished flow", "flow", f.ID.String(), "err", err)
		s.write(w, http.StatusOK, &response{Error: "the discharge could not be issued"})
		return
	}
	s.write(w, http.StatusOK, &response{Discharge: tok})
}

func (s *Server) buildStored(f *Flow) (string, error) {
	t, err := s.open(f.Ticket)
	if err != nil {
		return "", err
	}
	cs, err := caveat.ParseCaveatSet(f.Caveats)
	if err != nil {
		return "", fmt.Errorf("stored caveats: %w", err)
	}
	return s.build(t, f.Binding, cs)
}

// write answers with status and a JSON body. Answers are never cached:
// they carry discharges and one-time poll results.
func (s *Server) write(w http.ResponseWriter, status int, body *response) {
	w.Header().Set("Cache-Control", "no-store")
	httpjson.Write(w, status, body)
}

// storeFailed answers a store's refusal to hold a new flow: 429 with
// Retry-After for ErrFull (a full store refuses newcomers rather than
// dropping anyone's pending flow), 500 for anything else.
func (s *Server) storeFailed(w http.ResponseWriter, r *http.Request, err error) {
	if !errors.Is(err, ErrFull) {
		s.internal(w, r, "store", err)
		return
	}
	retry := time.Minute // a store that does not say
	var fe *FullError
	if errors.As(err, &fe) {
		retry = fe.RetryAfter
	}
	s.log.WarnContext(r.Context(), "tp: flow refused, no room", "err", err)
	w.Header().Set("Retry-After", strconv.FormatInt(RetrySeconds(retry), 10))
	s.write(w, http.StatusTooManyRequests, &response{Error: err.Error()})
}

// internal answers 500 and logs err with the step, but not the request's
// path: a poll path holds a secret.
func (s *Server) internal(w http.ResponseWriter, r *http.Request, step string, err error) {
	s.log.ErrorContext(r.Context(), "tp: internal error", "step", step, "err", err)
	s.write(w, http.StatusInternalServerError, &response{Error: "internal error"})
}
