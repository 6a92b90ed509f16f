package loadtest

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestHistogramBuckets checks that every latency falls in a bucket whose
// range holds it, that buckets are in order, and that they are at most
// 1/32 wide.
func TestHistogramBuckets(t *testing.T) {
	prevMax := int64(-1)
	for i := range 2*subBuckets + 30*subBuckets {
		lo, hi := uint64(prevMax+1), bucketMax(i)
		if hi < lo {
			t.Fatalf("bucket %d: max %d below its start %d", i, hi, lo)
		}
		for _, us := range []uint64{lo, hi, (lo + hi) / 2} {
			if got := bucketOf(us); got != i {
				t.Fatalf("%d µs: bucket %d, want %d [%d, %d]", us, got, i, lo, hi)
			}
		}
		if i >= 2*subBuckets && float64(hi-lo+1)/float64(lo) > 1.0/subBuckets+1e-9 {
			t.Fatalf("bucket %d [%d, %d] is wider than 1/%d of its start", i, lo, hi, subBuckets)
		}
		prevMax = int64(hi)
	}
}

// TestHistogramQuantiles compares the histogram's quantiles with the
// exact ones of random latencies: never below, at most 3.2 % above.
func TestHistogramQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h, a, b histogram
	var all []time.Duration
	for i := range 100_000 {
		// Log-uniform from 1 µs to 10 s.
		d := time.Duration(float64(time.Microsecond) * math.Pow(10, rng.Float64()*7))
		all = append(all, d)
		h.add(d)
		if i%2 == 0 {
			a.add(d)
		} else {
			b.add(d)
		}
	}
	a.merge(&b)
	slices.Sort(all)
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
		exact := all[int(q*float64(len(all)))-1]
		for name, hh := range map[string]*histogram{"one": &h, "merged": &a} {
			got := hh.quantile(q)
			exactUS := exact.Truncate(time.Microsecond)
			if got < exactUS || float64(got) > float64(exactUS)*1.032+float64(time.Microsecond) {
				t.Errorf("%s: p%g = %s, exact %s", name, q*100, got, exact)
			}
		}
	}
	if h.max != all[len(all)-1] || a.max != h.max || a.n != h.n {
		t.Errorf("max %s / %s, n %d / %d; want %s, %d", h.max, a.max, h.n, a.n, all[len(all)-1], len(all))
	}
	var empty histogram
	if empty.quantile(0.99) != 0 {
		t.Error("an empty histogram has a p99")
	}
}

func TestParseMix(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     Mix
		err      string
	}{
		{"default", DefaultMix.String(), DefaultMix, ""},
		{"some groups", "authorize=1, machines=3", Mix{Authorize: 1, Machines: 3}, ""},
		{"unknown group", "authorise=1", Mix{}, "unknown group"},
		{"twice", "tokens=1,tokens=2", Mix{}, "twice"},
		{"negative", "tokens=-1", Mix{}, "whole number"},
		{"not a number", "tokens=x", Mix{}, "whole number"},
		{"no weight", "tokens", Mix{}, "NAME=WEIGHT"},
		{"all zero", "tokens=0", Mix{}, "every weight is 0"},
		{"empty", "", Mix{}, "NAME=WEIGHT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseMix(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseMix(%q) = %v, %v; want an error with %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseMix(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
		})
	}
}

// TestMixPick checks that groups are drawn in proportion to their weights,
// and that a group of weight 0 never is.
func TestMixPick(t *testing.T) {
	m := Mix{Authorize: 70, Authenticate: 20, Machines: 10}
	rng := rand.New(rand.NewPCG(3, 4))
	var n [4]int
	const draws = 100_000
	for range draws {
		n[m.pick(rng)]++
	}
	for i, w := range []int{70, 20, 10, 0} {
		got := float64(n[i]) / draws * 100
		if got < float64(w)-1 || got > float64(w)+1 || (w == 0 && n[i] != 0) {
			t.Errorf("%s: %.2f %%, want %d %%", mixNames[i], got, w)
		}
	}
}

func TestClassify(t *testing.T) {
	netErr := errors.New("connection refused")
	for _, tc := range []struct {
		name     string
		a        answer
		want     int
		wantText string
		out      Outcome
	}{
		{"allowed", answer{status: 200}, 200, "", OutcomeOK},
		{"created", answer{status: 201}, 201, "", OutcomeOK},
		{"meant refusal", answer{status: 403, body: []byte(`{"error":"Machines: d not permitted"}`)}, 403, "Machines", OutcomeDenied},
		{"refusal for another reason", answer{status: 403, body: []byte(`{"error":"Apps"}`)}, 403, "Machines", OutcomeOther4xx},
		{"revoked as meant", answer{status: 401, body: []byte(`{"error":"token revoked"}`)}, 401, "revoked", OutcomeDenied},
		{"401 instead of 403", answer{status: 401, body: []byte(`{"error":"bad"}`)}, 403, "", OutcomeOther4xx},
		{"refused, meant allowed", answer{status: 403}, 200, "", OutcomeUnintendedDenial},
		{"401, meant allowed", answer{status: 401}, 200, "", OutcomeUnintendedDenial},
		{"allowed, meant refused", answer{status: 200}, 403, "", OutcomeUnintendedAllow},
		{"allowed, meant revoked", answer{status: 200}, 401, "revoked", OutcomeUnintendedAllow},
		{"conflict", answer{status: 409}, 200, "", OutcomeOther4xx},
		{"server error", answer{status: 503}, 200, "", Outcome5xx},
		{"server error, meant refused", answer{status: 500}, 403, "", Outcome5xx},
		{"network", answer{err: netErr}, 200, "", OutcomeNetwork},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := classify(&tc.a, tc.want, tc.wantText); got != tc.out {
				t.Errorf("classify = %s, want %s", got, tc.out)
			}
		})
	}
	for o := range numOutcomes {
		if want := o >= OutcomeUnintendedDenial; o.IsError() != want {
			t.Errorf("%s: IsError %v", o, o.IsError())
		}
	}
}

func TestRetryable(t *testing.T) {
	for status, want := range map[int]bool{200: false, 401: false, 403: false, 404: false, 409: false, 412: false,
		429: false, 500: true, 501: false, 502: true, 503: true, 504: true} {
		a := answer{status: status}
		if a.retryable() != want {
			t.Errorf("HTTP %d: retryable %v", status, !want)
		}
	}
	a := answer{err: errors.New("reset")}
	if !a.retryable() {
		t.Error("a network error is not retryable")
	}
}

func TestReadRecords(t *testing.T) {
	in := `{"op":"setup","org":"acme","org_id":1}
{"op":"mint","id":"a","token":"FlyV1 x","access":{"orgid":1}}
{"op":"revoke","id":"a"}
{"op":"mint","id":"b","tok`
	recs, err := ReadRecords(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[0].Org != "acme" || recs[1].Token != "FlyV1 x" || recs[2].Op != "revoke" {
		t.Fatalf("records: %+v", recs)
	}
	if _, err := ReadRecords(strings.NewReader("{\"op\":\"mint\"}\nnot json\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("a malformed line: %v", err)
	}
}

// TestWriteText checks the summary table's rows and the outcome counts.
func TestWriteText(t *testing.T) {
	var s stats
	s.latency[KindAuthorize].add(2 * time.Millisecond)
	s.outcomes[KindAuthorize][OutcomeOK]++
	s.latency[KindMint].add(5 * time.Millisecond)
	s.outcomes[KindMint][Outcome5xx]++
	s.retries, s.recovered = 3, 0
	r := &Result{Clients: 2, URLs: []string{"http://a"}, Mix: DefaultMix.String()}
	r.summarize(&s, 2*time.Second)
	if r.Requests != 2 || r.Errors != 1 || r.Throughput != 1 || r.Op("mint").Outcomes["5xx"] != 1 {
		t.Fatalf("result: %+v", r)
	}
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"2 requests, 1 req/s, 1 errors, 3 retries", "mint  ", "5xx  ", "network error"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
}
