package middleware_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/internal/servertest"
	"github.com/caveatdev/caveat/middleware"
)

func TestRequire(t *testing.T) {
	w := servertest.Start(t)
	auth := w.Srv.LocalAuthenticator()
	h := middleware.Require(auth, func(r *http.Request) (*flyio.Access, error) {
		if r.URL.Query().Get("bad") != "" {
			return nil, errors.New("bad machine id")
		}
		app := w.AppID
		if r.URL.Query().Get("other") != "" {
			app = w.OtherApp
		}
		return w.Access(app, r.URL.Query().Get("m"), r.URL.Query().Get("a")), nil
	}, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		p := middleware.FromContext(r.Context())
		httpjson.Write(rw, 200, map[string]string{"token": p.TokenID()})
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, tc := range []struct {
		query, header string
		status        int
		want          string
	}{
		{"?m=m1&a=r", w.Deploy, 200, w.DeployID},
		{"?m=m1&a=r", "", 401, "no token"},
		{"?m=m1&a=r", "Bearer fm2_garbage", 401, "malformed"},
		{"?m=m1&a=r&bad=1", w.Deploy, 400, "bad machine id"},
		{"?m=m1&a=r&other=1", w.Deploy, 403, "caveat 1 (Apps): unauthorized for resource"},
	} {
		req, _ := http.NewRequest("GET", srv.URL+tc.query, nil)
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var m map[string]string
		if json.Unmarshal(body, &m) != nil || resp.StatusCode != tc.status || !strings.Contains(string(body), tc.want) {
			t.Errorf("%s: %d %s", tc.query, resp.StatusCode, body)
		}
	}
}
