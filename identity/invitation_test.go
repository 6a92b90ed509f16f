package identity

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat/api"
	"github.com/caveatdev/caveat/internal/invitation"
	"github.com/caveatdev/caveat/store"
)

// invitation stores an invitation to org for email, made by the admin,
// valid a day, and returns its code.
func (h *harness) invitation(org, admin uint64, email string, role store.Role) string {
	h.t.Helper()
	var b [24]byte
	rand.Read(b[:])
	code := "cvi1_" + base64.RawURLEncoding.EncodeToString(b[:])
	_, err := h.db.CreateInvitation(context.Background(), store.NewInvitation{OrgID: org, Email: email, Role: role,
		CodeHash: invitation.CodeHash(code), InvitedBy: admin, CreatedAt: h.clk.Now(), ExpiresAt: h.clk.Now().Add(24 * time.Hour)})
	if err != nil {
		h.t.Fatal(err)
	}
	return code
}

func TestSignupWithInvitation(t *testing.T) {
	h := newHarness(t, nil)
	ada := h.signup("ada@example.com", "correct horse", "acme")
	h.svc.cfg.SignupOpen = false // an invitation works even then
	code := h.invitation(ada.Organization.ID, ada.User.ID, "Bob@Example.com", store.RoleAdmin)

	if c, msg := h.do("POST", "/aaa/v1/users", api.SignupRequest{Email: "carol@example.com", Password: "correct horse"}, nil); c != http.StatusForbidden {
		t.Fatalf("signup without invitation while closed: %d %s", c, msg)
	}
	for _, tc := range []struct {
		name string
		req  api.SignupRequest
		want int
		msg  string
	}{
		{"another email", api.SignupRequest{Email: "eve@example.com", Password: "correct horse", Invitation: code}, 403, "another email"},
		{"with an organization", api.SignupRequest{Email: "bob@example.com", Password: "correct horse", Invitation: code, Organization: "bob"}, 400, "organization"},
		{"not a code", api.SignupRequest{Email: "bob@example.com", Password: "correct horse", Invitation: "cvi1_short"}, 400, "invitation code"},
		{"unknown code", api.SignupRequest{Email: "bob@example.com", Password: "correct horse", Invitation: "cvi1_" + strings.Repeat("A", 32)}, 404, "no such invitation"},
		{"short password", api.SignupRequest{Email: "bob@example.com", Password: "short", Invitation: code}, 400, "password"},
	} {
		if c, msg := h.do("POST", "/aaa/v1/users", tc.req, nil); c != tc.want || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: %d %q, want %d with %q", tc.name, c, msg, tc.want, tc.msg)
		}
	}
	if _, err := h.db.GetUserByEmail(context.Background(), "eve@example.com"); err == nil {
		t.Fatal("a refused signup created an account")
	}

	var out api.SignupResult
	if c, msg := h.do("POST", "/aaa/v1/users", api.SignupRequest{Email: "BOB@example.com", Password: "correct horse", Invitation: code}, &out); c != http.StatusCreated {
		t.Fatalf("signup with the invitation: %d %s", c, msg)
	}
	if out.Organization == nil || out.Organization.Slug != "acme" || out.Organization.Role != "admin" {
		t.Fatalf("signup answer: %+v", out)
	}
	h.login("bob@example.com", "correct horse")
	if c, msg := h.do("POST", "/aaa/v1/users", api.SignupRequest{Email: "bob@example.com", Password: "correct horse", Invitation: code}, nil); c != http.StatusConflict || !strings.Contains(msg, "already used") {
		t.Fatalf("the invitation again: %d %s", c, msg)
	}

	// Expired.
	late := h.invitation(ada.Organization.ID, ada.User.ID, "late@example.com", store.RoleMember)
	h.clk.Advance(24 * time.Hour)
	if c, msg := h.do("POST", "/aaa/v1/users", api.SignupRequest{Email: "late@example.com", Password: "correct horse", Invitation: late}, nil); c != http.StatusGone || !strings.Contains(msg, "expired") {
		t.Fatalf("expired invitation: %d %s", c, msg)
	}
}

// postInvitation posts the invitation page's form, as a browser on the
// page would (or from elsewhere, with header).
func postInvitation(t *testing.T, pageURL string, form url.Values, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", pageURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestInvitationPage(t *testing.T) {
	h := newHarness(t, nil)
	ada := h.signup("ada@example.com", "correct horse", "acme")
	org := ada.Organization.ID
	h.signup("eve@example.com", "eve's password", "")
	h.signup("carol@example.com", "carol's password", "")

	// A new account, through the page.
	page := h.loc + invitation.Path + h.invitation(org, ada.User.ID, "bob@example.com", store.RoleMember)
	code, body := getPage(t, page)
	if code != 200 || !strings.Contains(body, "acme") || !strings.Contains(body, `value="bob@example.com"`) ||
		!strings.Contains(body, `value="signup"`) || !strings.Contains(body, `value="login"`) || strings.Contains(body, "<script") {
		t.Fatalf("GET the invitation page: %d\n%s", code, body)
	}
	if code, body := postInvitation(t, page, url.Values{"action": {"signup"}, "email": {"bob@example.com"}, "password": {"correct horse"}},
		"Sec-Fetch-Site", "cross-site"); code != 403 || !strings.Contains(body, "its own page") {
		t.Fatalf("a post from another site: %d\n%s", code, body)
	}
	if code, _ := postInvitation(t, page, url.Values{"action": {"signup"}, "email": {"bob@example.com"}, "password": {"correct horse"}},
		"Origin", "https://evil.example"); code != 403 {
		t.Fatalf("a post with another origin: %d", code)
	}
	if code, body := postInvitation(t, page, url.Values{"action": {"signup"}, "email": {"bob@example.com"}, "password": {"short"}}); code != 400 ||
		!strings.Contains(body, "password") {
		t.Fatalf("short password: %d\n%s", code, body)
	}
	if code, body := postInvitation(t, page, url.Values{"action": {"signup"}, "email": {"bob@example.com"}, "password": {"correct horse"}},
		"Origin", h.srv.URL, "Sec-Fetch-Site", "same-origin"); code != 200 || !strings.Contains(body, "bob@example.com is now a member of acme") {
		t.Fatalf("sign up and join: %d\n%s", code, body)
	}
	h.login("bob@example.com", "correct horse")
	if code, body := getPage(t, page); code != 409 || !strings.Contains(body, "already used") {
		t.Fatalf("the page of a used invitation: %d\n%s", code, body)
	}

	// An existing account, through the page: only the invited one.
	page = h.loc + invitation.Path + h.invitation(org, ada.User.ID, "Carol@example.com", store.RoleAdmin)
	for _, tc := range []struct {
		form url.Values
		want int
		text string
	}{
		{url.Values{"action": {"login"}, "email": {"carol@example.com"}, "password": {"wrong password"}}, 401, "Invalid email or password"},
		{url.Values{"action": {"login"}, "email": {"eve@example.com"}, "password": {"eve's password"}}, 403, "another email"},
		{url.Values{"action": {"signup"}, "email": {"carol@example.com"}, "password": {"carol's password"}}, 409, "already exists"},
		{url.Values{"action": {"dance"}, "email": {"carol@example.com"}, "password": {"carol's password"}}, 400, "Choose"},
		{url.Values{"action": {"login"}, "email": {"CAROL@example.com"}, "password": {"carol's password"}}, 200, "carol@example.com is now an admin of acme"},
	} {
		if code, body := postInvitation(t, page, tc.form); code != tc.want || !strings.Contains(body, tc.text) {
			t.Errorf("%v: %d, want %d with %q\n%s", tc.form, code, tc.want, tc.text, body)
		}
	}
	carol, err := h.db.GetUserByEmail(context.Background(), "carol@example.com")
	if err != nil {
		t.Fatal(err)
	}
	orgs, err := h.db.ListUserOrganizations(context.Background(), carol.ID)
	if err != nil || len(orgs) != 1 || orgs[0].Role != store.RoleAdmin {
		t.Fatalf("carol's organizations: %+v %v", orgs, err)
	}

	// Unknown, malformed and expired codes: a page that says so.
	if code, body := getPage(t, h.loc+invitation.Path+"cvi1_"+strings.Repeat("A", 32)); code != 404 || !strings.Contains(body, "no such invitation") {
		t.Fatalf("unknown code: %d\n%s", code, body)
	}
	if code, _ := getPage(t, h.loc+invitation.Path+"nonsense"); code != 400 {
		t.Fatalf("malformed code: %d", code)
	}
	page = h.loc + invitation.Path + h.invitation(org, ada.User.ID, "dan@example.com", store.RoleMember)
	h.clk.Advance(25 * time.Hour)
	if code, body := getPage(t, page); code != 410 || !strings.Contains(body, "expired") {
		t.Fatalf("expired invitation's page: %d\n%s", code, body)
	}
	if code, _ := postInvitation(t, page, url.Values{"action": {"signup"}, "email": {"dan@example.com"}, "password": {"correct horse"}}); code != 410 {
		t.Fatalf("signing up through an expired invitation: %d", code)
	}
	if _, err := h.db.GetUserByEmail(context.Background(), "dan@example.com"); err == nil {
		t.Fatal("an expired invitation created an account")
	}
	// No code, password or email reached the logs.
	for _, secret := range []string{"correct horse", "cvi1_", "bob@example.com", "carol@"} {
		if strings.Contains(h.logs.String(), secret) {
			t.Errorf("the logs hold %q", secret)
		}
	}
}

// TestInvitationPageOpaqueOrigin: the page's Referrer-Policy is
// no-referrer, under which a browser sends its own form's Origin as
// "null"; Sec-Fetch-Site, which only a browser sets, still says
// same-origin, and decides. (Found by the console's browser test.)
func TestInvitationPageOpaqueOrigin(t *testing.T) {
	h := newHarness(t, nil)
	ada := h.signup("ada@example.com", "correct horse", "acme")
	page := h.loc + invitation.Path + h.invitation(ada.Organization.ID, ada.User.ID, "bob@example.com", store.RoleMember)
	form := url.Values{"action": {"signup"}, "email": {"bob@example.com"}, "password": {"correct horse"}}
	for _, from := range [][]string{
		{"Origin", "null", "Sec-Fetch-Site", "cross-site"},
		{"Origin", "null", "Sec-Fetch-Site", "same-site"},
		{"Origin", "null"},
	} {
		if code, _ := postInvitation(t, page, form, from...); code != 403 {
			t.Fatalf("%v: %d, want 403", from, code)
		}
	}
	if code, body := postInvitation(t, page, form, "Origin", "null", "Sec-Fetch-Site", "same-origin"); code != 200 ||
		!strings.Contains(body, "bob@example.com is now a member of acme") {
		t.Fatalf("the page's own form, as Chromium sends it: %d\n%s", code, body)
	}
}
