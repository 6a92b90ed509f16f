package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/api"
	"github.com/caveatdev/caveat/client"
	"github.com/caveatdev/caveat/internal/servertest"
	"github.com/caveatdev/caveat/server"
	"github.com/caveatdev/caveat/store/postgres/pgtest"
	"github.com/caveatdev/caveat/tp"
)

// TestReplicasShareFlows: on PostgreSQL, a browser login started through
// one replica is completed through the other and polled through both
// (`caveat auth login --web`), and so is a user-interactive discharge
// flow of the login discharger: whichever replica a balancer picks for
// each request, the flow is there, and it is handed out once.
func TestReplicasShareFlows(t *testing.T) {
	db := pgtest.FreshDatabase(t)
	dir := t.TempDir()
	start := func(publicURL string) *server.Server {
		return servertest.Run(t, server.Config{DataDir: dir, DB: db, PublicURL: publicURL, Signup: true})
	}
	a := start("")
	b := start(a.URL())
	addrA, addrB := a.URL(), "http://"+b.Addr().String()
	// on sends a URL handed out under the public URL (A's) to a replica.
	on := func(replica, u string) string { return replica + strings.TrimPrefix(u, a.URL()) }
	ctx := context.Background()
	anon := client.New(addrA, nil)
	if _, err := anon.Signup(ctx, "ada@example.com", "correct horse battery", "acme"); err != nil {
		t.Fatal(err)
	}

	t.Run("web login", func(t *testing.T) {
		var started api.WebLogin
		if code := postJSON(t, addrA+"/aaa/v1/sessions/web", nil, &started); code != http.StatusCreated {
			t.Fatalf("start through A: %d", code)
		}
		ui := started.UserInteractive
		for _, r := range []string{addrA, addrB} {
			if code, _ := getURL(t, on(r, ui.PollURL)); code != http.StatusAccepted {
				t.Fatalf("poll through %s before the login: %d, want 202", r, code)
			}
		}
		if code, body := getURL(t, on(addrB, ui.UserURL)); code != http.StatusOK || !strings.Contains(body, "waiting for you") {
			t.Fatalf("the login page through B: %d\n%s", code, body)
		}
		if code := postForm(t, on(addrB, ui.UserURL)); code != http.StatusOK {
			t.Fatalf("login on the page through B: %d", code)
		}
		code, body := getURL(t, on(addrA, ui.PollURL))
		var sess client.Session
		if code != http.StatusOK || json.Unmarshal([]byte(body), &sess) != nil || sess.Token == "" || sess.Secret == "" {
			t.Fatalf("poll through A after the login on B: %d %s", code, body)
		}
		for _, r := range []string{addrA, addrB} {
			if code, _ := getURL(t, on(r, ui.PollURL)); code != http.StatusNotFound {
				t.Fatalf("poll through %s after the session was handed out: %d, want 404", r, code)
			}
		}
		if _, err := client.New(addrB, nil).WhoAmI(ctx, sess.Secret); err != nil {
			t.Fatalf("the session on B: %v", err)
		}
	})

	t.Run("discharge", func(t *testing.T) {
		sess, err := anon.Login(ctx, "ada@example.com", "correct horse battery")
		if err != nil {
			t.Fatal(err)
		}
		m, err := caveat.Parse(sess.Token)
		if err != nil {
			t.Fatal(err)
		}
		tickets := m.ThirdPartyTickets()
		if len(tickets) != 1 {
			t.Fatalf("%d tickets in the session token", len(tickets))
		}
		var started struct {
			UserInteractive api.UserInteractive `json:"user_interactive"`
		}
		body := map[string]string{"ticket": caveat.EncodeTicket(tickets[0].Ticket)}
		if code := postJSON(t, addrB+"/aaa/v1"+tp.InitPath, body, &started); code != http.StatusCreated {
			t.Fatalf("discharge request through B: %d", code)
		}
		ui := started.UserInteractive
		if code, _ := getURL(t, on(addrA, ui.PollURL)); code != http.StatusAccepted {
			t.Fatalf("poll through A before the login: %d, want 202", code)
		}
		if code := postForm(t, on(addrA, ui.UserURL)); code != http.StatusOK {
			t.Fatalf("login on the discharge page through A: %d", code)
		}
		code, raw := getURL(t, on(addrB, ui.PollURL))
		var out struct{ Discharge string }
		if code != http.StatusOK || json.Unmarshal([]byte(raw), &out) != nil || !strings.HasPrefix(out.Discharge, "fm2_") {
			t.Fatalf("poll through B after the login on A: %d %s", code, raw)
		}
		if code, _ := getURL(t, on(addrA, ui.PollURL)); code != http.StatusNotFound {
			t.Fatalf("second poll through A: %d, want 404", code)
		}
	})
}

func getURL(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

func postJSON(t *testing.T, u string, body, out any) int {
	t.Helper()
	raw := []byte("{}")
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	resp, err := http.Post(u, "application/json", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("POST %s: %d, body not JSON: %v", u, resp.StatusCode, err)
	}
	return resp.StatusCode
}

// postForm logs in as ada on a login page.
func postForm(t *testing.T, u string) int {
	t.Helper()
	resp, err := http.PostForm(u, url.Values{"email": {"ada@example.com"}, "password": {"correct horse battery"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
