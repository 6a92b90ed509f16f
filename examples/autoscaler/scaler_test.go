package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// fakeAPI is the Machines API as the scaler sees it, for unit tests; the
// story test in story_test.go runs against the real server.
type fakeAPI struct {
	machines []machine
	err      error
	calls    []string
}

func (f *fakeAPI) List(context.Context, string) ([]machine, error) {
	if f.err != nil {
		return nil, f.err
	}
	return append([]machine(nil), f.machines...), nil
}

func (f *fakeAPI) set(id, state string) error {
	if f.err != nil {
		return f.err
	}
	for i := range f.machines {
		if f.machines[i].ID == id {
			f.machines[i].State = state
		}
	}
	f.calls = append(f.calls, state+" "+id)
	return nil
}

func (f *fakeAPI) Start(_ context.Context, _, id string) error { return f.set(id, "started") }
func (f *fakeAPI) Stop(_ context.Context, _, id string) error  { return f.set(id, "stopped") }

func (f *fakeAPI) started() int {
	n := 0
	for _, m := range f.machines {
		if m.running() {
			n++
		}
	}
	return n
}

func TestScaler(t *testing.T) {
	api := &fakeAPI{machines: []machine{{ID: "a", State: "stopped"}, {ID: "b", State: "stopped"}, {ID: "c", State: "stopped"}, {ID: "d", State: "stopped"}}}
	var depth int64
	now := time.Unix(1764000000, 0)
	var logs bytes.Buffer
	s := &scaler{
		cfg:   Config{App: "workers", Queue: "celery", Min: 1, Max: 3, PerMachine: 10, Cooldown: time.Minute},
		log:   slog.New(slog.NewJSONHandler(&logs, nil)),
		api:   api,
		queue: func(context.Context) (int64, error) { return depth, nil },
		now:   func() time.Time { return now },
	}
	ctx := context.Background()
	step := func(d int64, advance time.Duration, want int) {
		t.Helper()
		depth = d
		now = now.Add(advance)
		s.tick(ctx)
		if got := api.started(); got != want {
			t.Fatalf("depth %d: %d machines started, want %d (calls %v)", d, got, want, api.calls)
		}
	}
	step(0, 0, 1)             // min 1
	step(25, time.Second, 3)  // ceil(25/10) = 3
	step(500, time.Second, 3) // max 3
	step(0, time.Second, 3)   // cool-down: no stop yet
	step(0, time.Minute, 1)   // down to min
	step(11, time.Second, 1)  // up again needs the cool-down
	step(11, time.Minute, 2)  // after it
	if !strings.Contains(logs.String(), "cooling down") || !strings.Contains(logs.String(), "started machine") {
		t.Errorf("decisions not logged: %s", logs.String())
	}

	// A refused token is logged as such, and the scaler keeps going.
	logs.Reset()
	api.err = &apiError{Status: 401, Message: "token 1234 was revoked"}
	step(40, time.Minute, 2)
	if !strings.Contains(logs.String(), "the token was refused") || !strings.Contains(logs.String(), "revoked") {
		t.Errorf("refusal not logged clearly: %s", logs.String())
	}
	api.err = errors.New("connection refused")
	step(40, time.Second, 2)
	api.err = nil
	step(40, time.Second, 3)
}

func TestWant(t *testing.T) {
	s := &scaler{cfg: Config{Min: 0, Max: 4, PerMachine: 10}}
	for depth, want := range map[int64]int{0: 0, 1: 1, 10: 1, 11: 2, 30: 3, 1000: 4} {
		if got := s.want(depth); got != want {
			t.Errorf("want(%d) = %d, want %d", depth, got, want)
		}
	}
}

func TestParseConfig(t *testing.T) {
	const good = "FlyV1 fm2_lJPEAQPEEKZUdnNaoys8SlxcqixWwv3Ctmh0dHBzOi8vYXJnLmV4YW1wbGUvdjGQxCCvMtzHkk5AmXLilJhRtEDCMWR6GEuny7+zvAHt3ZpBUA=="
	env := func(token string) func(string) string {
		return func(k string) string {
			return map[string]string{"CAVEAT_TOKEN": token, "CAVEAT_API_URL": "http://caveat.test"}[k]
		}
	}
	c, err := parseConfig([]string{"-a", "workers", "--max", "3"}, env(good), io.Discard)
	if err != nil || c.App != "workers" || c.Max != 3 || c.API != "http://caveat.test" || c.Token != good {
		t.Fatalf("parseConfig: %+v %v", c, err)
	}
	c, err = parseConfig([]string{"--api", "http://other.test", "--app", "workers"}, env(good), io.Discard)
	if err != nil || c.API != "http://other.test" {
		t.Fatalf("--api: %+v %v", c, err)
	}
	for _, tc := range []struct {
		args  []string
		token string
		want  string
	}{
		{[]string{"-a", "workers"}, "", "set CAVEAT_TOKEN"},
		{[]string{"-a", "workers"}, good[:40], "CAVEAT_TOKEN is not a valid token"},
		{[]string{"-a", "workers"}, "garbage", "CAVEAT_TOKEN is not a valid token"},
		{[]string{}, good, "--app is required"},
		{[]string{"-a", "workers", "extra"}, good, `unexpected argument "extra"`},
		{[]string{"-a", "workers", "--bogus"}, good, "unknown flag: --bogus"},
	} {
		_, err := parseConfig(tc.args, env(tc.token), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseConfig(%q, token %q): %v, want %q", tc.args, tc.token, err, tc.want)
		}
		if err != nil && tc.token != "" && strings.Contains(err.Error(), tc.token) {
			t.Errorf("the error repeats the token: %v", err)
		}
	}
}

func TestRedisLogsAreJSON(t *testing.T) {
	var buf bytes.Buffer
	redisLog{slog.New(slog.NewJSONHandler(&buf, nil))}.Printf(context.Background(), "pool: %s", "retrying")
	if !strings.HasPrefix(buf.String(), "{") || !strings.Contains(buf.String(), `"detail":"pool: retrying"`) || strings.Count(buf.String(), `"msg"`) != 1 {
		t.Fatalf("redis log line: %q", buf.String())
	}
}
