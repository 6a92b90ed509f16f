package cli

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestAnswerErrors is issue 13's second regression: an answer that is too
// large, cut short or not JSON is reported as exactly that — the server
// answered — and never with "is the server running?", which is kept for a
// server that does not answer at all.
func TestAnswerErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("org") {
		case "huge": // valid JSON, 5 MiB of it: one page was never that big
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"tokens": [], "padding": "%s"}`, strings.Repeat("x", 5<<20))
		case "html":
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<html><body>a proxy's login page</body></html>")
		case "cut":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "100000")
			fmt.Fprint(w, `{"tokens": [{"id": "`)
			// The handler returns early: the connection is closed short
			// of its Content-Length.
		}
	}))
	defer srv.Close()
	for _, tc := range []struct {
		org, want, hint string
	}{
		{"huge", "is larger than 4 MiB, the most this client reads", "a caveat server answers lists a page at a time"},
		{"html", "is not the JSON expected (46 bytes, text/html)", "check that --api (or CAVEAT_API_URL) is the URL of a caveat server"},
		{"cut", "was cut short after 20 bytes", "the connection broke while the answer was read"},
	} {
		env := map[string]string{"CAVEAT_API_URL": srv.URL, "CAVEAT_TOKEN": mustMint(t, srv.URL+"/v1")}
		res := runMain(t, env, "", "tokens", "list", "-o", tc.org)
		if res.code != exitFailure || !strings.Contains(res.stderr, tc.want) ||
			!strings.Contains(res.stderr, "GET /v1/tokens") || strings.Contains(res.stderr, "is the server running") ||
			!strings.Contains(res.stderr, "caveat: hint: "+tc.hint) {
			t.Errorf("%s answer: exit %d\n%s\nwant exit 1 saying %q, without asking whether the server runs", tc.org, res.code, res.stderr, tc.want)
		}
		if res.stdout != "" {
			t.Errorf("%s answer: stdout %q", tc.org, res.stdout)
		}
	}
	// A server that does not answer at all.
	env := map[string]string{"CAVEAT_API_URL": "http://127.0.0.1:1", "CAVEAT_TOKEN": mustMint(t, "http://127.0.0.1:1/v1")}
	res := runMain(t, env, "", "tokens", "list", "-o", "acme")
	if res.code != exitFailure || !strings.Contains(res.stderr, "is the server running?") {
		t.Errorf("no server: exit %d\n%s", res.code, res.stderr)
	}
}
