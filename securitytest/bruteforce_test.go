package securitytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat/identity"
	"github.com/caveatdev/caveat/store/postgres/pgtest"
)

// bucketModel is the documented login limit: a token bucket per key,
// Burst attempts at once and one more every Every, a bucket that is full
// until first used, and (for accounts) emptied of failures by a
// successful login. It predicts the server's answers exactly.
type bucketModel struct {
	limit   identity.RateLimit
	buckets map[string]*modelBucket
}

type modelBucket struct {
	tokens float64
	last   time.Time
}

func newBucketModel(l identity.RateLimit) *bucketModel {
	return &bucketModel{limit: l, buckets: map[string]*modelBucket{}}
}

// allow takes an attempt from key's bucket, or says how long until one is
// there.
func (m *bucketModel) allow(key string, now time.Time) (bool, time.Duration) {
	b, ok := m.buckets[key]
	if !ok {
		b = &modelBucket{tokens: float64(m.limit.Burst), last: now}
		m.buckets[key] = b
	}
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(float64(m.limit.Burst), b.tokens+float64(elapsed)/float64(m.limit.Every))
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) * float64(m.limit.Every))
}

func (m *bucketModel) reset(key string) { delete(m.buckets, key) }

// retryAfter is a wait as the Retry-After header says it: whole seconds,
// rounded up, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.FormatInt(max(int64((d+time.Second-1)/time.Second), 1), 10)
}

// loginModel predicts the answers of the login service of one server,
// whose clients all come from one address.
type loginModel struct {
	byAddress, byAccount *bucketModel
	passwords            map[string]string // by account key
}

// outcome is an answer: its status, its Retry-After, and which limit
// refused it.
type outcome struct {
	status     int
	retryAfter string
	limitedBy  string
}

const clientAddress = "127.0.0.1"

func (m *loginModel) signup(now time.Time) outcome {
	if ok, retry := m.byAddress.allow(clientAddress, now); !ok {
		return outcome{http.StatusTooManyRequests, retryAfter(retry), "address"}
	}
	return outcome{status: http.StatusCreated}
}

func (m *loginModel) login(email, password string, now time.Time) outcome {
	if ok, retry := m.byAddress.allow(clientAddress, now); !ok {
		return outcome{http.StatusTooManyRequests, retryAfter(retry), "address"}
	}
	key := strings.ToLower(strings.TrimSpace(email))
	if ok, retry := m.byAccount.allow(key, now); !ok {
		return outcome{http.StatusTooManyRequests, retryAfter(retry), "account"}
	}
	if want, ok := m.passwords[key]; !ok || want != password {
		return outcome{status: http.StatusUnauthorized}
	}
	m.byAccount.reset(key)
	return outcome{status: http.StatusCreated}
}

// emailVariant writes an email as a user (or a guesser) might: with other
// letter cases and surrounding spaces, which name the same account.
func emailVariant(r *rand.Rand, email string) string {
	b := []byte(email)
	for i := range b {
		if b[i] >= 'a' && b[i] <= 'z' && chance(r, 0.2) {
			b[i] -= 'a' - 'A'
		}
	}
	return strings.Repeat(" ", r.IntN(2)) + string(b) + strings.Repeat("\t", r.IntN(2))
}

// TestLoginThrottled: password guessing is throttled per account and per
// client address, the right password is refused too while throttled, and
// Retry-After says truly when to try again.
//
// Each case is a fresh server on a settable clock with two to four
// accounts, and a random sequence of logins from one address: mostly wrong
// passwords, some right ones, unknown emails, the emails in other letter
// cases and with spaces around them (the same account), a spoofed
// X-Forwarded-For now and then (the server trusts no proxy), and the clock
// moved on by random amounts. Every answer (401, 201, or 429 with its
// Retry-After) must be what the documented limits (identity's
// DefaultAccountLimit and DefaultAddressLimit token buckets) say. Each case
// ends with the two stories of the property, checked the same way: 10
// wrong passwords for one account, after which its right password gets a
// 429 until Retry-After has passed; and wrong passwords spread over many
// accounts until the address is throttled, after which any account's right
// password gets a 429 too.
//
// One case is a server and 60 to 110 logins; the short form runs 6 cases.
func TestLoginThrottled(t *testing.T) {
	testLoginThrottled(t, func() []*testServer { return []*testServer{startServer(t, serverOptions{})} })
}

// TestLoginThrottledReplicas is TestLoginThrottled on two replicas sharing
// PostgreSQL, each login sent to one of them at random: the buckets are in
// the database, so the answers are exactly those of one server (the same
// model), not twice as many guesses.
func TestLoginThrottledReplicas(t *testing.T) {
	pgtest.ServerURL(t)
	testLoginThrottled(t, func() []*testServer {
		a := startServer(t, serverOptions{db: pgtest.FreshDatabase(t)})
		return []*testServer{a, startServer(t, serverOptions{replicaOf: a})}
	})
}

func testLoginThrottled(t *testing.T, start func() []*testServer) {
	r := newRand(t)
	cases := iterations(t, 6)
	var counts = map[string]int{}
	for c := range cases {
		loginCase(t, r, c, counts, start())
	}
	t.Logf("%d cases: %d logins accepted, %d refused as wrong, %d throttled by account, %d by address, %d of them with the right password",
		cases, counts["201"], counts["401"], counts["account"], counts["address"], counts["right throttled"])
	if counts["account"] == 0 || counts["address"] == 0 || counts["right throttled"] == 0 {
		t.Error("no login was throttled: the cases test nothing")
	}
}

func loginCase(t *testing.T, r *rand.Rand, c int, counts map[string]int, replicas []*testServer) {
	for _, s := range replicas {
		defer s.stop()
	}
	s := replicas[0] // the clock they share, and the signups
	var sent []int   // how many logins each replica answered
	sent = make([]int, len(replicas))
	model := &loginModel{
		byAddress: newBucketModel(identity.DefaultAddressLimit),
		byAccount: newBucketModel(identity.DefaultAccountLimit),
		passwords: map[string]string{},
	}
	var emails []string
	for i := range 2 + r.IntN(3) {
		email := fmt.Sprintf("user%d-%d@example.test", c, i)
		password := fmt.Sprintf("password %d of %d", r.Uint32(), i)
		want := model.signup(s.clock.Now())
		code, _, _ := s.postLogin("/aaa/v1/users", email, password, "")
		if code != want.status {
			t.Fatalf("case %d: signup %d: %d, want %d", c, i, code, want.status)
		}
		model.passwords[email] = password
		emails = append(emails, email)
	}

	step := 0
	try := func(email, password, xff string) outcome {
		t.Helper()
		step++
		right := model.passwords[strings.ToLower(strings.TrimSpace(email))] == password
		want := model.login(email, password, s.clock.Now())
		i := r.IntN(len(replicas))
		sent[i]++
		code, retry, body := replicas[i].postLogin("/aaa/v1/sessions", email, password, xff)
		if code != want.status || retry != want.retryAfter {
			t.Fatalf("case %d, login %d through replica %d (%q, right password %v, X-Forwarded-For %q): %d Retry-After %q, want %d Retry-After %q\n%s",
				c, step, i, email, right, xff, code, retry, want.status, want.retryAfter, body)
		}
		switch {
		case want.limitedBy != "":
			counts[want.limitedBy]++
			if right {
				counts["right throttled"]++
			}
		default:
			counts[strconv.Itoa(code)]++
		}
		return want
	}

	advances := []time.Duration{0, 0, 0, 500 * time.Millisecond, time.Second, 2 * time.Second, 7 * time.Second,
		30 * time.Second, 61 * time.Second, 5 * time.Minute}
	if chance(r, 0.5) {
		// A fast guesser, who meets the limits.
		advances = advances[:5]
	}
	for range 40 + r.IntN(50) {
		s.clock.Advance(pick(r, advances))
		email := pick(r, emails)
		password := model.passwords[email]
		switch n := r.IntN(20); {
		case n < 3:
			email = fmt.Sprintf("nobody%d@example.test", r.IntN(5))
		case n < 6:
			// the right password
		default:
			password = fmt.Sprintf("guess %d", r.IntN(1000))
		}
		xff := ""
		if chance(r, 0.3) {
			xff = fmt.Sprintf("203.0.113.%d", r.IntN(256))
		}
		try(emailVariant(r, email), password, xff)
	}

	// One account: its limit, then the right password refused until
	// Retry-After has passed.
	s.clock.Advance(2 * time.Hour)
	victim := pick(r, emails)
	for range identity.DefaultAccountLimit.Burst {
		try(emailVariant(r, victim), "wrong password", "")
	}
	got := try(victim, model.passwords[victim], "")
	if got.limitedBy != "account" {
		t.Fatalf("case %d: after %d wrong passwords the right one is not throttled by the account limit", c, identity.DefaultAccountLimit.Burst)
	}
	wait, _ := strconv.Atoi(got.retryAfter)
	s.clock.Advance(time.Duration(wait)*time.Second - time.Second)
	try(victim, model.passwords[victim], "")
	s.clock.Advance(time.Second)
	if try(victim, model.passwords[victim], "").status != http.StatusCreated {
		t.Fatalf("case %d: the right password is refused after waiting Retry-After", c)
	}

	// One address: guesses spread over accounts until it is throttled;
	// then every account's right password is refused.
	s.clock.Advance(2 * time.Hour)
	for i := range identity.DefaultAddressLimit.Burst {
		try(fmt.Sprintf("spread%d@example.test", i), "wrong password", "")
	}
	for _, email := range emails {
		if got := try(emailVariant(r, email), model.passwords[email], ""); got.limitedBy != "address" {
			t.Fatalf("case %d: after %d guesses from one address, a right password is not throttled by the address limit", c,
				identity.DefaultAddressLimit.Burst)
		}
	}
	s.clock.Advance(identity.DefaultAddressLimit.Every)
	if try(victim, model.passwords[victim], "").status != http.StatusCreated {
		t.Fatalf("case %d: the right password is refused after the address's bucket refilled", c)
	}
	for i, n := range sent {
		if n == 0 {
			t.Fatalf("case %d: replica %d answered no login: the case spreads nothing", c, i)
		}
	}
}

// postLogin posts an email and a password (to signup or login) and
// returns the status, the Retry-After header and the body.
func (s *testServer) postLogin(path, email, password, xff string) (int, string, string) {
	s.t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	req, err := http.NewRequest("POST", s.url+path, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), string(raw)
}
