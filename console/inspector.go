package console

// The token inspector: what "caveat tokens debug" says about a pasted
// token or bundle, and, for a named token of one of the user's
// organizations, its registry record and whether its signature verifies.
// The pasted text is read from the form, described, and forgotten: it is
// never stored, logged or sent back.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/internal/inspect"
	"github.com/caveatdev/caveat/keyring"
)

// tokenReport is what the inspector says about one token of a bundle.
type tokenReport struct {
	inspect.Token
	// CaveatsJSON are its caveats as "caveat tokens debug" prints them;
	// List the same, one line each.
	CaveatsJSON string
	List        []caveatLine
	// Org and Registry are the organization and the registry record of
	// a named token of one of the user's organizations.
	Org      string
	Registry *tokenRow
	// Signature says whether the token verifies under its key, for a
	// token of one of the user's organizations; SignatureOK whether it
	// does.
	Signature   string
	SignatureOK bool
	// Note says what else is known of it, or why nothing is.
	Note string
}

// inspectPage serves GET /inspect: the form.
func (c *Console) inspectPage(w http.ResponseWriter, q *request) error {
	c.render(w, http.StatusOK, "inspect", q.view("Token inspector", "inspect", nil))
	return nil
}

// inspect serves POST /inspect.
func (c *Console) inspect(w http.ResponseWriter, q *request) error {
	v := q.view("Token inspector", "inspect", nil)
	text := strings.TrimSpace(q.PostForm.Get("token"))
	if text == "" {
		v.Problem = &problem{Status: http.StatusBadRequest, Heading: headings[http.StatusBadRequest],
			Message: "Paste a token (fm2_…) or a bundle (FlyV1 fm2_…,fm2_…) to inspect."}
		c.render(w, http.StatusBadRequest, "inspect", v)
		return nil
	}
	b, err := caveat.ParseBundle(text)
	if err != nil {
		v.Problem = &problem{Status: http.StatusBadRequest, Heading: headings[http.StatusBadRequest],
			Message: "This is not a token or a bundle that caveat can read: " + err.Error()}
		c.render(w, http.StatusBadRequest, "inspect", v)
		return nil
	}
	v.Data = c.reports(q, b)
	c.render(w, http.StatusOK, "inspect", v)
	return nil
}

// reports describes every token of the bundle.
func (c *Console) reports(q *request, b *caveat.Bundle) []tokenReport {
	descs := inspect.Describe(b, c.cfg.Now())
	views := inspect.Views(b)
	out := make([]tokenReport, len(descs))
	for i, d := range descs {
		r := tokenReport{Token: d, CaveatsJSON: indentJSON(views[i].Caveats), List: caveatLines(views[i].Caveats)}
		if !d.Discharge {
			if err := c.recognize(q, b, i, &r); err != nil {
				r.Note = "What this server knows of it could not be read: " + c.problemOf(q.Request, err).Message
			}
		}
		out[i] = r
	}
	return out
}

// caveatLine is a caveat on one line: its type and its JSON body.
type caveatLine struct {
	Index int
	Type  string
	Body  string
}

// caveatLines renders each caveat of a set on one line.
func caveatLines(cs caveat.CaveatSet) []caveatLine {
	var out []caveatLine
	for i := range cs {
		js, err := caveat.CaveatSet{cs[i]}.MarshalJSON()
		var one []struct {
			Type string          `json:"type"`
			Body json.RawMessage `json:"body"`
		}
		if err != nil || json.Unmarshal(js, &one) != nil || len(one) != 1 {
			out = append(out, caveatLine{Index: i, Type: cs[i].Name(), Body: "(cannot be shown as JSON)"})
			continue
		}
		var body bytes.Buffer
		if json.Compact(&body, one[0].Body) != nil {
			body.Reset()
			body.Write(one[0].Body)
		}
		out = append(out, caveatLine{Index: i, Type: one[0].Type, Body: body.String()})
	}
	return out
}

// indentJSON renders caveats as "caveat tokens debug" does.
func indentJSON(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return "(caveats that cannot be shown as JSON: " + err.Error() + ")"
	}
	return buf.String()
}

// recognize says what the server knows of permission token i: whose key
// signed it and, for the user's organizations only (another's is
// answered as an unknown one), its registry record and its signature. A
// look here is not a use: nothing is recorded.
func (c *Console) recognize(q *request, b *caveat.Bundle, i int, r *tokenReport) error {
	m := &b.Tokens[i]
	if m.Location != c.tokenLocation {
		r.Note = fmt.Sprintf("A token for %s, not for this server (%s): it knows nothing more of it.", m.Location, c.tokenLocation)
		return nil
	}
	if c.cfg.Keyring.IsSessionKID(m.Nonce.KID) {
		r.Note = "A login session token of this server. Sessions are not in the token registry; a session ends when its user logs out."
		return nil
	}
	key, orgID, err := c.cfg.Keyring.Lookup(q.ctx(), m.Nonce.KID)
	retired := errors.Is(err, keyring.ErrRetiredKey)
	switch {
	case errors.Is(err, keyring.ErrUnknownKey):
		r.Note = "Not a token of your organizations."
		return nil
	case err != nil && !retired:
		return err
	}
	// A retired key no longer says whose it was: look for the token in
	// each of the user's organizations.
	for k := range q.orgs {
		org := &q.orgs[k]
		if !retired && org.ID != orgID {
			continue
		}
		rows, err := c.tokenRows(q, org)
		if err != nil {
			return err
		}
		for j := range rows {
			if rows[j].ID == r.UUID {
				r.Org, r.Registry = org.Slug, &rows[j]
			}
		}
		if !retired {
			r.Org = org.Slug
			break
		}
	}
	switch {
	case r.Org == "":
		r.Note = "Not a token of your organizations."
		return nil
	case retired:
		r.Signature = "Signed with a retired key of " + r.Org + ": the server refuses this token."
		return nil
	}
	// The token and the bundle's discharges, verified as the authority
	// would, revoked branches included.
	sub := &caveat.Bundle{Tokens: []caveat.Macaroon{*m}}
	for j := range b.Tokens {
		if j != i && b.IsDischarge(j) {
			sub.Tokens = append(sub.Tokens, b.Tokens[j])
		}
	}
	trusted := caveat.TrustedThirdParties{c.loginLocation: {c.cfg.Keyring.LoginTicketKey()}}
	opts := &caveat.VerifyOptions{RevokedBranches: func(*caveat.Macaroon) (caveat.BranchSet, error) {
		if r.Registry == nil || r.Registry.RevokedBranches == 0 {
			return nil, nil
		}
		bs, err := c.cfg.Store.ListRevokedBranches(q.ctx(), r.UUID)
		set := caveat.BranchSet{}
		for _, b := range bs {
			set[caveat.BranchID(b.Branch)] = struct{}{}
		}
		return set, err
	}}
	keys := func([]byte) (caveat.SigningKey, error) { return key, nil }
	_, err = sub.VerifyWith(c.tokenLocation, keys, trusted, opts)
	switch {
	case errors.Is(err, caveat.ErrBranchRevoked):
		r.Signature = "Signed with " + r.Org + "'s key, but a branch it passes through is revoked, so the server refuses it: " + err.Error()
	case err != nil && !errors.Is(err, caveat.ErrInvalid) && !errors.Is(err, caveat.ErrMalformed) && !errors.Is(err, caveat.ErrProof):
		return err
	case err != nil:
		r.Signature = "Does NOT verify under " + r.Org + "'s key: " + err.Error()
	default:
		r.Signature, r.SignatureOK = "Verifies under "+r.Org+"'s key "+fmt.Sprintf("%x", m.Nonce.KID)+".", true
	}
	if r.Registry == nil {
		r.Note = "Signed with " + r.Org + "'s key but not in its registry: the server refuses tokens it did not register."
	}
	return nil
}
