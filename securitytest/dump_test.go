package securitytest

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/authority"
	"github.com/caveatdev/caveat/client"
	"github.com/caveatdev/caveat/keyring"
	"github.com/caveatdev/caveat/store"
	"github.com/caveatdev/caveat/store/postgres/pgtest"
	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/chacha20poly1305"
)

// secret is something that must not be in a database dump.
type secret struct {
	what string
	// forms are the encodings searched for.
	forms [][]byte
}

// bytesSecret is searched for raw and in hex and base64, as a column or
// a dump may hold bytes.
func bytesSecret(what string, b []byte) secret {
	s := secret{what: what}
	for _, f := range []string{
		string(b),
		hex.EncodeToString(b),
		strings.ToUpper(hex.EncodeToString(b)),
		base64.StdEncoding.EncodeToString(b),
		base64.RawStdEncoding.EncodeToString(b),
		base64.URLEncoding.EncodeToString(b),
		base64.RawURLEncoding.EncodeToString(b),
	} {
		s.forms = append(s.forms, []byte(f))
	}
	return s
}

// tokenSecrets are a token's text and its tail (the part only its holder
// knows; the nonce and key id are stored as the token's id).
func tokenSecrets(t testing.TB, what, text string) []secret {
	t.Helper()
	m, err := caveat.Parse(strings.TrimPrefix(text, "FlyV1 "))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return []secret{bytesSecret(what, []byte(m.String())), bytesSecret(what+"'s tail", m.Tail())}
}

// found returns the secrets that the dump holds, in any form.
func found(dump []byte, secrets []secret) []string {
	var out []string
	for _, s := range secrets {
		for _, f := range s.forms {
			if bytes.Contains(dump, f) {
				out = append(out, fmt.Sprintf("%s (as %.24q…)", s.what, f))
				break
			}
		}
	}
	return out
}

// TestDatabaseDumpHoldsNoKey: a copy of the database gives no usable key
// and no credential.
//
// A real server (SQLite; and PostgreSQL when CAVEAT_TEST_POSTGRES_URL is
// set) serves signups, logins, discharges, organizations, apps, key
// rotations, tokens of every profile, uses of them, a retirement, a
// revocation and a logout. Then the secrets are gathered: the master key
// and every key derived from it (root-key sealing, session signing, login
// tickets, session secrets; each derivation is checked against what the
// server does with it), every root key (opened through the keyring, as a
// replica would), the passwords, the session secrets, and every token and
// discharge with its tail. None may be in the SQLite files (read while the
// server runs and after it stops) nor in a dump of every PostgreSQL table,
// in raw bytes, hex or base64. The server's logs are searched too. To show
// that the search looks at the right bytes, the dump must hold every key
// id, token id and organization slug.
//
// One case is one such server; the short form runs 1 case of each, the
// long form one for every 50 iterations.
func TestDatabaseDumpHoldsNoKey(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) {
		r := newRand(t)
		for range dumpCases(t) {
			dumpScenario(t, r, serverOptions{}, func(s *testServer) map[string][]byte { return sqliteFiles(t, s.dataDir) })
		}
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		r := newRand(t)
		for range dumpCases(t) {
			db := pgtest.FreshDatabase(t)
			dumpScenario(t, r, serverOptions{db: db}, func(*testServer) map[string][]byte { return postgresDump(t, db) })
		}
	})
}

// dumpCases is the number of servers to dump: each is a whole scenario,
// so the long form runs one for every 50 iterations.
func dumpCases(t *testing.T) int { return max(1, iterations(t, 1)/50) }

// sqliteFiles reads every file of the data directory but the master key:
// the database and its WAL and shared-memory files.
func sqliteFiles(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		if e.Name() == "master.key" || e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	if len(out["caveat.db"]) == 0 {
		t.Fatalf("no database in %s: %v", dir, entries)
	}
	return out
}

// postgresDump is every row of every table as text (bytea in hex), and
// pg_dump's output when pg_dump is installed and can dump this server.
func postgresDump(t testing.TB, url string) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT quote_ident(table_schema) || '.' || quote_ident(table_name)
		FROM information_schema.tables
		WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, table := range tables {
		rows, err := conn.Query(ctx, "SELECT t::text FROM "+table+" t")
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		out["table "+table] = []byte(strings.Join(lines, "\n"))
	}
	if len(tables) < 5 {
		t.Fatalf("only %d tables: %v", len(tables), tables)
	}
	if path, err := exec.LookPath("pg_dump"); err == nil {
		dump, err := exec.Command(path, "--dbname", url).Output()
		if err != nil {
			t.Logf("pg_dump could not dump the database (%v); the tables were read with SELECT", err)
		} else {
			out["pg_dump"] = dump
		}
	}
	return out
}

// hkdfKey derives a key from the master key as the authority does.
func hkdfKey(t testing.TB, master keyring.MasterKey, label string, n int) []byte {
	t.Helper()
	k, err := hkdf.Key(sha256.New, master[:], nil, label, n)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func dumpScenario(t *testing.T, r *rand.Rand, opt serverOptions, dump func(*testServer) map[string][]byte) {
	ctx := context.Background()
	s := startServer(t, opt)

	passwords := map[string]string{
		"alice@a.test": fmt.Sprintf("alice's password %d", r.Uint32()),
		"bob@b.test":   fmt.Sprintf("bob's password %d", r.Uint32()),
	}
	s.signup("alice@a.test", passwords["alice@a.test"], "org-a")
	s.signup("bob@b.test", passwords["bob@b.test"], "org-b")
	sessions := []*session{
		s.login("alice@a.test", passwords["alice@a.test"]),
		s.login("alice@a.test", passwords["alice@a.test"]),
		s.login("bob@b.test", passwords["bob@b.test"]),
	}
	alice, bob := sessions[0], sessions[2]
	if _, err := alice.api.CreateOrganization(ctx, "org-a2"); err != nil {
		t.Fatal(err)
	}
	var named []string
	for _, o := range []struct {
		who  *session
		slug string
	}{{alice, "org-a"}, {alice, "org-a2"}, {bob, "org-b"}} {
		app, err := o.who.api.CreateApp(ctx, o.slug, "app-"+o.slug)
		if err != nil {
			t.Fatal(err)
		}
		for range 1 + r.IntN(3) {
			if _, err := o.who.api.RotateKey(ctx, o.slug); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range authority.Profiles {
			for range 1 + r.IntN(2) {
				req := client.CreateTokenRequest{Profile: p, Org: o.slug}
				if p == authority.ProfileDeploy || p == authority.ProfileMachineExec {
					req.App = app.Name
				}
				tok, err := o.who.api.CreateToken(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				named = append(named, tok.Header)
				// A use, which the registry records.
				if code, body := s.authenticate(tok.Header); code != 200 {
					t.Fatalf("a new token: %d %s", code, body)
				}
			}
		}
	}
	var orgIDs []uint64
	for _, who := range []*session{alice, bob} {
		orgs, err := who.api.Organizations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range orgs {
			orgIDs = append(orgIDs, o.ID)
		}
	}
	if len(orgIDs) != 3 {
		t.Fatalf("organizations: %v", orgIDs)
	}

	// Every root key, opened as a replica opens it, before one is retired.
	kr := s.keyring()
	master := readMasterKey(t, filepath.Join(s.dataDir, "master.key"))
	var secrets []secret
	var markers [][]byte
	var retireKID string
	keys := 0
	for _, org := range orgIDs {
		rks, _, err := s.srv.Store().ListRootKeys(ctx, org, store.Page{Limit: store.MaxPageLimit})
		if err != nil {
			t.Fatal(err)
		}
		for _, rk := range rks {
			key, _, err := kr.Lookup(ctx, rk.KID)
			if err != nil {
				t.Fatalf("root key %x: %v", rk.KID, err)
			}
			keys++
			secrets = append(secrets, bytesSecret(fmt.Sprintf("root key %x of organization %d", rk.KID, org), key))
			markers = append(markers, rk.KID)
			if retireKID == "" && rk.State == "rotated" && org == orgIDs[0] {
				retireKID = hex.EncodeToString(rk.KID) // a key of org-a
			}
			// The sealing key, derived here, opens the sealed key: it is the
			// key to look for.
			aead, err := chacha20poly1305.NewX(hkdfKey(t, master, "caveat root key sealing v1", chacha20poly1305.KeySize))
			if err != nil {
				t.Fatal(err)
			}
			ad := binary.BigEndian.AppendUint64([]byte("caveat sealed root key v1\x00"), org)
			opened, err := aead.Open(nil, rk.Sealed[:aead.NonceSize()], rk.Sealed[aead.NonceSize():], append(ad, rk.KID...))
			if err != nil || !bytes.Equal(opened, key) {
				t.Fatalf("the sealing key derived here does not open root key %x (%v): the authority's derivation changed; update this test", rk.KID, err)
			}
		}
	}
	if keys < 2*len(orgIDs) {
		t.Fatalf("%d root keys for %d organizations after rotations", keys, len(orgIDs))
	}

	// The master key and what is derived from it.
	masterText, err := os.ReadFile(filepath.Join(s.dataDir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, bytesSecret("the master key", master[:]), bytesSecret("the master key file", bytes.TrimSpace(masterText)))
	_, sessionKey := kr.SessionKey()
	if !bytes.Equal(sessionKey, hkdfKey(t, master, "caveat session signing key v1", 32)) {
		t.Fatal("the session key is not derived as this test derives it; update this test")
	}
	ticketKey := kr.LoginTicketKey()
	secretsKey := hkdfKey(t, master, "caveat session secret key v1", 32)
	secrets = append(secrets,
		bytesSecret("the root-key sealing key", hkdfKey(t, master, "caveat root key sealing v1", chacha20poly1305.KeySize)),
		bytesSecret("the session signing key", sessionKey),
		bytesSecret("the login ticket key", ticketKey[:]),
		bytesSecret("the session secret key", secretsKey))

	for email, pw := range passwords {
		secrets = append(secrets, bytesSecret(email+"'s password", []byte(pw)))
	}
	for i, ses := range sessions {
		id, mac, ok := strings.Cut(strings.TrimPrefix(ses.Secret, "cvs1_"), ".")
		if !ok || id != ses.SessionID {
			t.Fatalf("session secret of session %s is not cvs1_<id>.<mac>", ses.SessionID)
		}
		h := hmac.New(sha256.New, secretsKey)
		h.Write([]byte("session:" + id))
		if base64.RawURLEncoding.EncodeToString(h.Sum(nil)) != mac {
			t.Fatal("the session secrets are not derived as this test derives them; update this test")
		}
		macBytes, _ := base64.RawURLEncoding.DecodeString(mac)
		secrets = append(secrets, bytesSecret(fmt.Sprintf("session %d's secret", i), []byte(ses.Secret)),
			bytesSecret(fmt.Sprintf("session %d's secret MAC", i), macBytes))
		secrets = append(secrets, tokenSecrets(t, fmt.Sprintf("session %d's token", i), ses.Token)...)
		secrets = append(secrets, tokenSecrets(t, fmt.Sprintf("session %d's discharge", i), dischargeOf(t, ses.bundle))...)
		markers = append(markers, []byte(ses.SessionID))
	}
	for i, h := range named {
		secrets = append(secrets, tokenSecrets(t, fmt.Sprintf("named token %d", i), h)...)
		m, _ := caveat.Parse(strings.TrimPrefix(h, "FlyV1 "))
		markers = append(markers, []byte(m.Nonce.UUID().String()))
	}
	markers = append(markers, []byte("org-a2"))

	// What happens after keys and tokens exist: a retirement, a
	// revocation, a logout.
	if err := alice.api.RetireKey(ctx, "org-a", retireKID); err != nil {
		t.Fatalf("retire key %s of org-a: %v", retireKID, err)
	}
	list, err := client.Collect(alice.api.Tokens(ctx, client.TokenQuery{Org: "org-a", Expired: true}, client.Page{}))
	if err != nil || len(list) == 0 {
		t.Fatalf("tokens of org-a: %v %v", list, err)
	}
	if _, err := alice.api.RevokeToken(ctx, pick(r, list).ID); err != nil {
		t.Fatal(err)
	}
	if err := s.anon().Logout(ctx, sessions[1].Secret); err != nil {
		t.Fatal(err)
	}

	check := func(when string, files map[string][]byte) {
		t.Helper()
		var all []byte
		for name, b := range files {
			all = append(all, b...)
			for _, f := range found(b, secrets) {
				t.Errorf("%s, %s holds %s", when, name, f)
			}
		}
		for _, m := range markers {
			if !bytes.Contains(all, m) && !bytes.Contains(all, []byte(hex.EncodeToString(m))) {
				t.Fatalf("%s, the dump does not hold %q, which it should: the search looks at the wrong bytes", when, m)
			}
		}
	}
	check("while the server runs", dump(s))
	s.stop()
	check("after the server stopped", dump(s))
	if got := found([]byte(s.logs.String()), secrets); len(got) > 0 {
		t.Errorf("the server's logs hold %s", strings.Join(got, ", "))
	}
	t.Logf("%d secrets (%d root keys of %d organizations, %d named tokens, %d sessions) searched for in every form",
		len(secrets), keys, len(orgIDs), len(named), len(sessions))
}
