package console

// The organization's root keys: list, rotate, and retire after a warning
// that names the tokens that die with the key.

import (
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/store"
)

// keyRow is a root key as the pages show it: never its material.
type keyRow struct {
	store.RootKey
	Hex string
	// Tokens are the organization's tokens created while the key was
	// the one that minted, newest first; Live how many of them still
	// work (neither revoked nor expired).
	Tokens []tokenRow
	Live   int
}

// mintedBy says whether a token was created while key k minted: the
// registry does not record which key signed a token, so this goes by the
// times, from the key's creation to its rotation.
func mintedBy(t store.Token, k store.RootKey) bool {
	if t.OrgID != k.OrgID || t.CreatedAt.Before(k.CreatedAt) {
		return false
	}
	return k.RotatedAt.IsZero() || t.CreatedAt.Before(k.RotatedAt)
}

// keyRows lists the organization's keys (the operation "list keys") with
// the tokens each minted.
func (c *Console) keyRows(q *request, org *store.OrganizationRole) ([]keyRow, error) {
	ks, err := allOf(func(p store.Page) ([]store.RootKey, string, error) {
		return c.cfg.Authority.Keys(q.ctx(), q.p, org.ID, p)
	})
	if err != nil {
		return nil, err
	}
	tokens, err := c.tokenRows(q, org)
	if err != nil {
		return nil, err
	}
	rows := make([]keyRow, len(ks))
	for i, k := range ks {
		rows[i] = keyRow{RootKey: k, Hex: hex.EncodeToString(k.KID)}
		for _, t := range tokens {
			if mintedBy(t.Token, k) {
				rows[i].Tokens = append(rows[i].Tokens, t)
				if t.Status == "active" {
					rows[i].Live++
				}
			}
		}
	}
	return rows, nil
}

// keysPage serves GET /orgs/{org}/keys.
func (c *Console) keysPage(w http.ResponseWriter, q *request) error {
	org, err := q.org()
	if err != nil {
		return err
	}
	rows, err := c.keyRows(q, org)
	if err != nil {
		return err
	}
	v := q.view(org.Slug+" · Keys", "keys", org)
	v.Notice, v.Data = q.notice(), rows
	c.render(w, http.StatusOK, "keys", v)
	return nil
}

// rotateKey serves POST /orgs/{org}/keys/rotate: the operation "rotate
// key".
func (c *Console) rotateKey(w http.ResponseWriter, q *request) error {
	org, err := q.org()
	if err != nil {
		return err
	}
	if _, err := c.cfg.Authority.RotateKey(q.ctx(), q.p, org.ID); err != nil {
		return err
	}
	redirect(w, q, "/orgs/"+org.Slug+"/keys", "rotated")
	return nil
}

type retireData struct {
	Key keyRow
	// Since is how long ago the key stopped minting.
	Since string
}

// retirePage serves GET /orgs/{org}/keys/{kid}/retire: the warning.
func (c *Console) retirePage(w http.ResponseWriter, q *request) error {
	return c.showRetire(w, q, http.StatusOK, nil)
}

func (c *Console) showRetire(w http.ResponseWriter, q *request, status int, p *problem) error {
	org, err := q.org()
	if err != nil {
		return err
	}
	rows, err := c.keyRows(q, org)
	if err != nil {
		return err
	}
	kid := strings.ToLower(q.PathValue("kid"))
	for _, k := range rows {
		if k.Hex == kid {
			v := q.view(org.Slug+" · Retire key", "keys", org)
			d := retireData{Key: k}
			if !k.RotatedAt.IsZero() {
				d.Since = when(k.RotatedAt, c.cfg.Now())
			}
			v.Problem, v.Data = p, d
			c.render(w, status, "retire", v)
			return nil
		}
	}
	return httpjson.Errorf(http.StatusNotFound, "organization %s has no key %s", org.Slug, q.PathValue("kid"))
}

// retireKey serves POST /orgs/{org}/keys/{kid}/retire: the operation
// "retire key".
func (c *Console) retireKey(w http.ResponseWriter, q *request) error {
	org, err := q.org()
	if err != nil {
		return err
	}
	kid, err := hex.DecodeString(q.PathValue("kid"))
	if err != nil || len(kid) == 0 {
		return httpjson.Errorf(http.StatusNotFound, "%q is not a key id", q.PathValue("kid"))
	}
	if err := c.cfg.Authority.RetireKey(q.ctx(), q.p, org.ID, kid); err != nil {
		p := c.problemOf(q.Request, err)
		return c.showRetire(w, q, p.Status, p)
	}
	redirect(w, q, "/orgs/"+org.Slug+"/keys", "retired")
	return nil
}
