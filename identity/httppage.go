package identity

// The HTML login page of the browser flows. It is one self-contained
// document: no script, no external asset, everything escaped by
// html/template, and headers that keep it out of frames, caches and
// Referer headers (its URL holds the flow's secret).

import (
	"errors"
	"html/template"
	"net/http"

	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/store"
)

// maxFormBody bounds a login form post.
const maxFormBody = 16 << 10

type page struct {
	Title   string
	Kind    string // "error", "ok" or "" for the message's style
	Message string
	Detail  string
	Form    bool
	Email   string // to fill the form in again after a failure
	// Buttons replace the form's one "Log in" button with a choice,
	// posted as "action".
	Buttons []pageButton
}

// pageButton is a submit button of the form: its action and its label.
type pageButton struct {
	Action string
	Label  string
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.Title}} · caveat</title>
<style>
body { font: 16px/1.5 system-ui, sans-serif; color: #1d1d1f; background: #f5f5f7; margin: 0; }
main { max-width: 26rem; margin: 4rem auto; padding: 2rem; background: #fff; border-radius: 8px; box-shadow: 0 1px 4px #0002; }
h1 { font-size: 1.4rem; margin-top: 0; }
.error { color: #b00020; font-weight: 600; }
.ok { color: #0a7a28; font-weight: 600; }
.detail { color: #555; font-size: .9rem; }
label { display: block; margin: 1rem 0 .25rem; }
input { width: 100%; box-sizing: border-box; padding: .5rem; font: inherit; }
button { margin-top: 1.25rem; padding: .5rem 1.5rem; font: inherit; cursor: pointer; }
</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
{{if .Message}}<p class="{{.Kind}}" role="status">{{.Message}}</p>{{end}}
{{if .Detail}}<p class="detail">{{.Detail}}</p>{{end}}
{{if .Form}}<form method="post">
<label for="email">Email</label>
<input id="email" name="email" type="email" value="{{.Email}}" autocomplete="username" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
{{range .Buttons}}<button type="submit" name="action" value="{{.Action}}">{{.Label}}</button>
{{else}}<button type="submit">Log in</button>
{{end}}</form>{{end}}
</main>
</body>
</html>
`))

// page writes p with status.
func (s *Service) page(w http.ResponseWriter, status int, p page) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	pageTemplate.Execute(w, p) // an error here is a client gone away
}

// pageLogin checks the credentials posted on a login page. When they do
// not pass, it answers with the page p again, saying why, and returns
// false.
func (s *Service) pageLogin(w http.ResponseWriter, r *http.Request, p *page) (store.User, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		status := http.StatusBadRequest
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			status = http.StatusRequestEntityTooLarge
		}
		p.Kind, p.Message = "error", "The form could not be read. Please try again."
		s.page(w, status, *p)
		return store.User{}, false
	}
	email, password := r.PostForm.Get("email"), r.PostForm.Get("password")
	p.Email = email
	if email == "" || password == "" {
		p.Kind, p.Message = "error", "Enter your email and password."
		s.page(w, http.StatusBadRequest, *p)
		return store.User{}, false
	}
	u, err := s.authenticate(r.Context(), r, email, password)
	if err == nil {
		return u, true
	}
	var lim *limitedError
	status, _, refused := httpjson.StatusOf(err)
	switch {
	case errors.As(err, &lim):
		w.Header().Set("Retry-After", lim.retryAfter())
		p.Kind, p.Message = "error", "Too many login attempts. Try again in "+lim.retryAfter()+" seconds."
		s.page(w, http.StatusTooManyRequests, *p)
	case refused:
		p.Kind, p.Message = "error", "Invalid email or password."
		s.page(w, status, *p)
	default:
		s.internal(r, err)
		p.Kind, p.Message = "error", "Something went wrong on the server. Please try again later."
		s.page(w, http.StatusInternalServerError, *p)
	}
	return store.User{}, false
}
