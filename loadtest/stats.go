package loadtest

import (
	"fmt"
	"io"
	"math"
	"math/bits"
	"strings"
	"text/tabwriter"
	"time"
)

// Kind is the kind of one request.
type Kind int

// The kinds of requests.
const (
	KindAuthorize Kind = iota
	KindAuthenticate
	KindMachineStart
	KindMachineStop
	KindMint
	KindRevoke
	numKinds
)

var kindNames = [numKinds]string{"authorize", "authenticate", "machine-start", "machine-stop", "mint", "revoke"}

func (k Kind) String() string { return kindNames[k] }

// Outcome is how one request ended, after its retries.
type Outcome int

// The outcomes. Those from OutcomeUnintendedDenial on are errors.
const (
	OutcomeOK Outcome = iota
	// OutcomeDenied is a refusal the request was meant to get.
	OutcomeDenied
	// OutcomeConflict is a 412 of a machine start or stop: the machine
	// was in transition or already in the state asked for.
	OutcomeConflict
	// OutcomeUnintendedDenial is a 401 or 403 of a request meant to be
	// allowed.
	OutcomeUnintendedDenial
	// OutcomeUnintendedAllow is a 200 of a request meant to be refused.
	OutcomeUnintendedAllow
	// OutcomeOther4xx is any other status below 500 that the request was
	// not meant to get.
	OutcomeOther4xx
	// Outcome5xx is a 5xx on the last attempt.
	Outcome5xx
	// OutcomeNetwork is a network error (or a timeout) on the last attempt.
	OutcomeNetwork
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"ok", "intended_denial", "expected_conflict", "unintended_denial",
	"unintended_allow", "other_4xx", "5xx", "network_error"}

func (o Outcome) String() string { return outcomeNames[o] }

// IsError reports whether the outcome counts as an error.
func (o Outcome) IsError() bool { return o >= OutcomeUnintendedDenial }

// histogram counts latencies in log-linear buckets of microseconds: exact
// below 64 µs, then 32 buckets per power of two, so that a quantile read
// from it is at most about 3 % above the true one. It takes a few KiB
// however long the run.
type histogram struct {
	counts []uint64
	n      uint64
	sum    time.Duration
	max    time.Duration
}

const (
	subBits    = 5
	subBuckets = 1 << subBits
)

// bucketOf returns the bucket of a latency in microseconds.
func bucketOf(us uint64) int {
	if us < 2*subBuckets {
		return int(us)
	}
	shift := bits.Len64(us) - (subBits + 1) // us>>shift is in [subBuckets, 2*subBuckets)
	return 2*subBuckets + (shift-1)*subBuckets + int(us>>shift) - subBuckets
}

// bucketMax returns the largest latency, in microseconds, of bucket i.
func bucketMax(i int) uint64 {
	if i < 2*subBuckets {
		return uint64(i)
	}
	j := i - 2*subBuckets
	shift := j/subBuckets + 1
	top := uint64(j%subBuckets + subBuckets)
	return (top+1)<<shift - 1
}

func (h *histogram) add(d time.Duration) {
	us := uint64(max(d, 0) / time.Microsecond)
	i := bucketOf(us)
	if i >= len(h.counts) {
		h.counts = append(h.counts, make([]uint64, i+1-len(h.counts))...)
	}
	h.counts[i]++
	h.n++
	h.sum += d
	h.max = max(h.max, d)
}

func (h *histogram) merge(o *histogram) {
	if len(o.counts) > len(h.counts) {
		h.counts = append(h.counts, make([]uint64, len(o.counts)-len(h.counts))...)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// quantile returns the latency below which a fraction q of the requests
// fell (the upper end of its bucket, never above the maximum).
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(bucketMax(i))*time.Microsecond, h.max)
		}
	}
	return h.max
}

// stats is what one client counts; Run merges them at the end.
type stats struct {
	latency   [numKinds]histogram
	outcomes  [numKinds][numOutcomes]uint64
	retries   uint64
	recovered uint64
}

func (s *stats) merge(o *stats) {
	for k := range numKinds {
		s.latency[k].merge(&o.latency[k])
		for c := range numOutcomes {
			s.outcomes[k][c] += o.outcomes[k][c]
		}
	}
	s.retries += o.retries
	s.recovered += o.recovered
}

// Result is the summary of a run.
type Result struct {
	Start    time.Time `json:"start"`
	Duration float64   `json:"duration_s"`
	Clients  int       `json:"clients"`
	URLs     []string  `json:"urls"`
	Mix      string    `json:"mix"`
	Requests uint64    `json:"requests"`
	// Throughput is requests per second over the run.
	Throughput float64 `json:"requests_per_s"`
	// Errors counts the requests whose outcome is an error.
	Errors uint64 `json:"errors"`
	// Retries counts the attempts after the first; Recovered the requests
	// that succeeded (with any expected answer) thanks to a retry.
	Retries   uint64            `json:"retries"`
	Recovered uint64            `json:"recovered_by_retry"`
	Outcomes  map[string]uint64 `json:"outcomes"`
	// Operations are per kind, then "all".
	Operations []Operation `json:"operations"`
	// Timeline has one entry per second of the run.
	Timeline []Second `json:"timeline"`
	// Records counts the lines written to the record file.
	Records int `json:"records"`
}

// Operation is the summary of one kind of request. Latencies are in
// milliseconds, from the first attempt to the last answer.
type Operation struct {
	Kind       string            `json:"kind"`
	Count      uint64            `json:"count"`
	Throughput float64           `json:"requests_per_s"`
	P50        float64           `json:"p50_ms"`
	P90        float64           `json:"p90_ms"`
	P99        float64           `json:"p99_ms"`
	Max        float64           `json:"max_ms"`
	Outcomes   map[string]uint64 `json:"outcomes"`
}

// Second is one second of the run: the requests that ended in it and how
// many of them were errors.
type Second struct {
	Second   int    `json:"second"`
	Requests uint64 `json:"requests"`
	Errors   uint64 `json:"errors"`
}

// Op returns the summary of a kind ("all" for every request), or nil.
func (r *Result) Op(kind string) *Operation {
	for i := range r.Operations {
		if r.Operations[i].Kind == kind {
			return &r.Operations[i]
		}
	}
	return nil
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)) / 1000 }

// summarize turns merged stats into the operations and totals of r.
func (r *Result) summarize(s *stats, elapsed time.Duration) {
	secs := elapsed.Seconds()
	r.Duration = math.Round(secs*1000) / 1000
	var all histogram
	var allOut [numOutcomes]uint64
	r.Outcomes = map[string]uint64{}
	for k := range numKinds {
		h := &s.latency[k]
		all.merge(h)
		op := Operation{Kind: k.String(), Count: h.n, Outcomes: map[string]uint64{}}
		op.fill(h, secs)
		for c := range numOutcomes {
			op.Outcomes[c.String()] = s.outcomes[k][c]
			allOut[c] += s.outcomes[k][c]
		}
		r.Operations = append(r.Operations, op)
	}
	op := Operation{Kind: "all", Count: all.n, Outcomes: map[string]uint64{}}
	op.fill(&all, secs)
	for c := range numOutcomes {
		op.Outcomes[c.String()] = allOut[c]
		r.Outcomes[c.String()] = allOut[c]
		if c.IsError() {
			r.Errors += allOut[c]
		}
	}
	r.Operations = append(r.Operations, op)
	r.Requests = all.n
	r.Throughput = op.Throughput
	r.Retries, r.Recovered = s.retries, s.recovered
}

func (op *Operation) fill(h *histogram, secs float64) {
	if secs > 0 {
		op.Throughput = math.Round(float64(h.n)/secs*10) / 10
	}
	op.P50, op.P90, op.P99, op.Max = ms(h.quantile(0.5)), ms(h.quantile(0.9)), ms(h.quantile(0.99)), ms(h.max)
}

// outcomeLabels are the outcomes as the text summary names them.
var outcomeLabels = [numOutcomes]string{"ok", "intended denial", "expected conflict (412)", "unintended denial",
	"unintended allow", "4xx other", "5xx", "network error"}

// WriteText writes the summary for people: totals, a table of latencies
// by kind, and the counts by outcome.
func (r *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%d clients, %.1f s, %s, mix %s\n", r.Clients, r.Duration, strings.Join(r.URLs, " "), r.Mix)
	fmt.Fprintf(&b, "%d requests, %.0f req/s, %d errors, %d retries (%d requests recovered by a retry)\n\n",
		r.Requests, r.Throughput, r.Errors, r.Retries, r.Recovered)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "operation\tcount\treq/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\terrors\t")
	for _, op := range r.Operations {
		var errs uint64
		for c := range numOutcomes {
			if c.IsError() {
				errs += op.Outcomes[c.String()]
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t\n", op.Kind, op.Count, op.Throughput,
			op.P50, op.P90, op.P99, op.Max, errs)
	}
	tw.Flush()
	b.WriteString("\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "outcome\tcount")
	for c := range numOutcomes {
		fmt.Fprintf(tw, "%s\t%d\n", outcomeLabels[c], r.Outcomes[c.String()])
	}
	tw.Flush()
	_, err := io.WriteString(w, b.String())
	return err
}
