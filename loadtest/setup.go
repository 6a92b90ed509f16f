package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/client"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/resset"
)

// Target is the deployment and the account that drives it.
type Target struct {
	// URLs are the replicas' base URLs (without /v1).
	URLs []string
	// PublicURL is the deployment's public URL, which the tokens name as
	// their location; the first of URLs when empty.
	PublicURL string
	// Email and Password are an account that administers Org.
	Email    string
	Password string
	// Org is the organization's slug; empty means the account's only
	// organization.
	Org string
}

func (t *Target) publicURL() string {
	if t.PublicURL != "" {
		return strings.TrimRight(t.PublicURL, "/")
	}
	return t.URLs[0]
}

// Validate checks the target's fields.
func (t *Target) Validate() error {
	if len(t.URLs) == 0 {
		return errors.New("no base URL: give at least one replica's URL")
	}
	for i, u := range append([]string{t.PublicURL}, t.URLs...) {
		if i == 0 && u == "" {
			continue
		}
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return fmt.Errorf("%q is not a base URL: it must start with http:// or https://", u)
		}
	}
	for i := range t.URLs {
		t.URLs[i] = strings.TrimRight(t.URLs[i], "/")
	}
	if t.Email == "" || t.Password == "" {
		return errors.New("an account is needed: an email and a password")
	}
	return nil
}

// PrepareOptions say what Prepare creates.
type PrepareOptions struct {
	// Signup signs the account up first (with Org as its organization,
	// "loadtest" when empty); an account that exists already is fine.
	Signup bool
	// Machines is how many machines load-a should have at least
	// (DefaultMachines when 0).
	Machines int
	// Clients sizes the connection pool (DefaultClients when 0).
	Clients int
	// Logf receives a line for each step; nil means silence.
	Logf func(format string, args ...any)
}

// Defaults of a run.
const (
	DefaultClients  = 64
	DefaultDuration = 60 * time.Second
	DefaultMachines = 16
	DefaultRetries  = 2
	DefaultTimeout  = 10 * time.Second
	// signupOrg is the organization of a signup with no Org.
	signupOrg = "loadtest"
)

// The apps of the load, in the organization.
const (
	appA = "load-a" // its machines are started and stopped
	appB = "load-b" // refused to the tokens of load-a
)

// Fixture is what Prepare made: the logged-in session, the organization,
// its apps and machines, and the requests of the mix.
type Fixture struct {
	target    Target
	transport *http.Transport
	session   *client.Transport

	Org      string
	OrgID    uint64
	AppA     client.App
	AppB     client.App
	Machines []string

	// authorize and authenticate are the prepared requests, allowed ones
	// repeated so that about a third are meant to be refused.
	authorize    []prepared
	authenticate []prepared
	// control is the rC token of load-a's machines.
	control string
	// mintBody mints a deploy token of load-a; mintAccess is what it
	// allows.
	mintBody   []byte
	mintAccess json.RawMessage
}

// prepared is a request of the mix and the answer it is meant to get.
type prepared struct {
	name string
	body []byte
	// want is 200, 401 or 403; wantText is a word the refusal must hold.
	want     int
	wantText string
}

// Prepare logs in (after signing up, if asked) through the first replica
// that answers, finds or creates the apps and machines, and mints the
// tokens of the mix.
func Prepare(ctx context.Context, t Target, opt PrepareOptions) (*Fixture, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if opt.Machines <= 0 {
		opt.Machines = DefaultMachines
	}
	if opt.Clients <= 0 {
		opt.Clients = DefaultClients
	}
	logf := opt.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	fx := &Fixture{target: t, transport: newHTTPTransport(opt.Clients)}
	base, err := fx.firstHealthy(ctx)
	if err != nil {
		return nil, err
	}
	anon := client.New(base, &http.Client{Transport: fx.transport, Timeout: time.Minute})
	if opt.Signup {
		org := t.Org
		if org == "" {
			org = signupOrg
		}
		_, err := anon.Signup(ctx, t.Email, t.Password, org)
		switch {
		case err == nil:
			logf("signed up %s with organization %s", t.Email, org)
			t.Org = org
		case client.IsStatus(err, http.StatusConflict) && strings.Contains(err.Error(), "account"):
			logf("%s has signed up already; logging in", t.Email)
		default:
			return nil, fmt.Errorf("signup: %w", err)
		}
	}
	sess, err := fx.login(ctx, anon)
	if err != nil {
		return nil, err
	}
	fx.session = sess
	admin := client.New(base, &http.Client{Transport: sess, Timeout: time.Minute})
	if err := fx.pickOrg(ctx, admin, t.Org); err != nil {
		return nil, err
	}
	if err := fx.apps(ctx, admin, logf); err != nil {
		return nil, err
	}
	mint := func(profile, app, name string) (client.Token, error) {
		tok, err := admin.CreateToken(ctx, client.CreateTokenRequest{Profile: profile, Org: fx.Org, App: app,
			Name: name, Expiry: "24h"})
		if err != nil {
			return tok, fmt.Errorf("mint the %s token %s: %w", profile, name, err)
		}
		return tok, nil
	}
	orgTok, err := mint("org", "", "load-org")
	if err != nil {
		return nil, err
	}
	if err := fx.machines(ctx, base, orgTok.Header, opt.Machines, logf); err != nil {
		return nil, err
	}
	readonly, err := mint("readonly", "", "load-readonly")
	if err != nil {
		return nil, err
	}
	deploy, err := mint("deploy", appA, "load-deploy")
	if err != nil {
		return nil, err
	}
	revoked, err := mint("deploy", appB, "load-revoked")
	if err != nil {
		return nil, err
	}
	if _, err := admin.RevokeToken(ctx, revoked.ID); err != nil {
		return nil, fmt.Errorf("revoke the token load-revoked: %w", err)
	}
	control, err := attenuate(deploy.Header, &flyio.Machines{Machines: resset.ResourceSet[string]{"": resset.ActionRead | resset.ActionControl}})
	if err != nil {
		return nil, err
	}
	fx.control = control
	fx.cases(orgTok.Header, readonly.Header, deploy.Header, revoked.Header)
	logf("prepared organization %s (%d): apps %s and %s, %d machines, 5 tokens", fx.Org, fx.OrgID, appA, appB, len(fx.Machines))
	return fx, nil
}

// Close closes the fixture's idle connections. (A server shutting down
// gracefully waits up to 5 s for a connection that was opened and never
// used, which the pool may hold.)
func (fx *Fixture) Close() { fx.transport.CloseIdleConnections() }

// firstHealthy returns the first URL whose /healthz answers 200.
func (fx *Fixture) firstHealthy(ctx context.Context) (string, error) {
	hc := &http.Client{Transport: fx.transport, Timeout: 5 * time.Second}
	var errs []error
	for _, u := range fx.target.URLs {
		req, err := http.NewRequestWithContext(ctx, "GET", u+"/healthz", nil)
		if err != nil {
			return "", err
		}
		resp, err := hc.Do(req)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return u, nil
		}
		errs = append(errs, fmt.Errorf("%s/healthz: HTTP %d", u, resp.StatusCode))
	}
	return "", fmt.Errorf("no replica is healthy: %w", errors.Join(errs...))
}

// login logs in and returns a transport that sends the session and keeps
// its login discharge fresh.
func (fx *Fixture) login(ctx context.Context, anon *client.Client) (*client.Transport, error) {
	s, err := anon.Login(ctx, fx.target.Email, fx.target.Password)
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	tr := client.NewTransport(fx.target.publicURL(), "FlyV1 "+s.Token, s.Secret)
	tr.Base = fx.transport
	return tr, nil
}

// pickOrg finds the organization: the one named, or the account's only
// one; the account must administer it.
func (fx *Fixture) pickOrg(ctx context.Context, admin *client.Client, slug string) error {
	orgs, err := admin.Organizations(ctx)
	if err != nil {
		return fmt.Errorf("list organizations: %w", err)
	}
	var found *client.Organization
	for i := range orgs {
		if orgs[i].Slug == slug || (slug == "" && len(orgs) == 1) {
			found = &orgs[i]
		}
	}
	switch {
	case found == nil && slug == "":
		return fmt.Errorf("the account belongs to %d organizations: name one", len(orgs))
	case found == nil:
		return fmt.Errorf("the account does not belong to organization %q", slug)
	case found.Role != "admin":
		return fmt.Errorf("the account is %s, not admin, of organization %q: the mix mints org tokens", found.Role, found.Slug)
	}
	fx.Org, fx.OrgID = found.Slug, found.ID
	return nil
}

// apps finds or creates load-a and load-b.
func (fx *Fixture) apps(ctx context.Context, admin *client.Client, logf func(string, ...any)) error {
	apps, err := client.Collect(admin.Apps(ctx, fx.Org, client.Page{Limit: 1000}))
	if err != nil {
		return fmt.Errorf("list apps: %w", err)
	}
	for _, want := range []struct {
		name string
		dst  *client.App
	}{{appA, &fx.AppA}, {appB, &fx.AppB}} {
		for _, a := range apps {
			if a.Name == want.name {
				*want.dst = a
			}
		}
		if want.dst.ID != 0 {
			continue
		}
		a, err := admin.CreateApp(ctx, fx.Org, want.name)
		if err != nil {
			return fmt.Errorf("create app %s: %w", want.name, err)
		}
		logf("created app %s", want.name)
		*want.dst = a
	}
	return nil
}

// machines finds load-a's machines and creates more up to n.
func (fx *Fixture) machines(ctx context.Context, base, orgToken string, n int, logf func(string, ...any)) error {
	mc := client.New(base, &http.Client{Transport: &bearer{header: orgToken, base: fx.transport}, Timeout: time.Minute})
	ms, err := client.Collect(mc.Machines(ctx, appA, client.ListMachinesOptions{}, client.Page{Limit: 1000}))
	if err != nil {
		return fmt.Errorf("list the machines of %s: %w", appA, err)
	}
	for _, m := range ms {
		fx.Machines = append(fx.Machines, m.ID)
	}
	created := 0
	for len(fx.Machines) < n {
		m, err := mc.CreateMachine(ctx, appA, client.CreateMachineRequest{Config: client.MachineConfig{Image: "registry.example/load:latest"}})
		if err != nil {
			return fmt.Errorf("create a machine in %s: %w", appA, err)
		}
		fx.Machines = append(fx.Machines, m.ID)
		created++
	}
	if created > 0 {
		logf("created %d machines in %s", created, appA)
	}
	return nil
}

// bearer sends a fixed Authorization header.
type bearer struct {
	header string
	base   http.RoundTripper
}

func (b *bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", b.header)
	return b.base.RoundTrip(r)
}

// attenuate adds caveats to the permission tokens of a header, offline.
func attenuate(header string, cs ...caveat.Caveat) (string, error) {
	b, err := caveat.ParseBundle(header)
	if err != nil {
		return "", fmt.Errorf("attenuate: %w", err)
	}
	for i := range b.Tokens {
		if b.IsDischarge(i) || b.Tokens[i].IsProof() {
			continue
		}
		if err := b.Tokens[i].Add(cs...); err != nil {
			return "", fmt.Errorf("attenuate: %w", err)
		}
	}
	return b.Header(), nil
}

// access renders a flyio.Access in JSON.
func access(org, app uint64, machine, action string) json.RawMessage {
	a := map[string]any{"orgid": org, "action": action}
	if app != 0 {
		a["appid"] = app
	}
	if machine != "" {
		a["machine"] = machine
	}
	b, _ := json.Marshal(a) // a map of numbers and strings always encodes
	return b
}

// cases fills the prepared requests of the mix.
func (fx *Fixture) cases(org, readonly, deploy, revoked string) {
	m := fx.Machines[0]
	a, b, o := fx.AppA.ID, fx.AppB.ID, fx.OrgID
	authz := func(name, header string, acc json.RawMessage, want int, wantText string) prepared {
		body, _ := json.Marshal(map[string]any{"header": header, "access": acc})
		return prepared{name: name, body: body, want: want, wantText: wantText}
	}
	allowed := []prepared{
		authz("readonly reads load-a", readonly, access(o, a, "", "r"), 200, ""),
		authz("deploy controls a machine of load-a", deploy, access(o, a, m, "C"), 200, ""),
		authz("rC controls a machine of load-a", fx.control, access(o, a, m, "C"), 200, ""),
		authz("org destroys a machine of load-b", org, access(o, b, m, "d"), 200, ""),
	}
	denied := []prepared{
		authz("readonly writes load-a", readonly, access(o, a, "", "w"), 403, ""),
		authz("deploy reads load-b", deploy, access(o, b, "", "r"), 403, ""),
		authz("rC destroys a machine of load-a", fx.control, access(o, a, m, "d"), 403, "Machines"),
		authz("readonly reads another organization", readonly, access(o+1_000_000, 0, "", "r"), 403, "Organization"),
		authz("the revoked token reads load-b", revoked, access(o, b, "", "r"), 401, "revoked"),
	}
	// Three of each allowed case for one of each denied: 12 to 5.
	for range 3 {
		fx.authorize = append(fx.authorize, allowed...)
	}
	fx.authorize = append(fx.authorize, denied...)

	authn := func(name, header string, want int, wantText string) prepared {
		body, _ := json.Marshal(map[string]string{"header": header})
		return prepared{name: name, body: body, want: want, wantText: wantText}
	}
	fx.authenticate = []prepared{
		authn("readonly", readonly, 200, ""), authn("deploy", deploy, 200, ""), authn("rC", fx.control, 200, ""),
		authn("org", org, 200, ""), authn("the revoked token", revoked, 401, "revoked"),
	}
	fx.mintAccess = access(o, a, "", "r")
	fx.mintBody, _ = json.Marshal(client.CreateTokenRequest{Profile: "deploy", Org: fx.Org, App: appA, Name: "load-mint", Expiry: "24h"})
}
