// Command autoscaler keeps the number of started machines of an app in
// step with the depth of a Celery queue, through caveat's Machines API and
// with nothing but a token.
//
// Every --interval it reads the queue's length from Redis (Celery's Redis
// broker keeps each queue as a list named after it, so LLEN is the number
// of waiting tasks), computes the machines wanted — the tasks divided by
// --per-machine, rounded up, kept between --min and --max — and starts
// stopped machines or stops started ones to get there, at most one change
// of direction per --cooldown. It logs every decision as a JSON line, and
// when an API call fails (a network error, a refusal, a revoked token) it
// logs why and tries again at the next tick.
//
// The token comes only from CAVEAT_TOKEN: a named token, best attenuated
// to what the autoscaler does, reading and controlling machines:
//
// Create the app's machines first (with a session or a deploy token): an
// rC token can start and stop machines but not create them.
//
//	caveat tokens create deploy -a workers --expiry 8760h |
//	  caveat tokens attenuate -f machines-rC.json > autoscaler.token
//
// where machines-rC.json is [{"type":"Machines","body":{"machines":{"":"rC"}}}].
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/pflag"
)

// Config is the autoscaler's configuration.
type Config struct {
	API        string // the caveat server's URL
	App        string
	Queue      string
	Redis      string // a redis:// URL
	Min, Max   int
	PerMachine int
	Cooldown   time.Duration
	Interval   time.Duration
	Token      string
}

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	c, err := parseConfig(os.Args[1:], os.Getenv, os.Stdout)
	if errors.Is(err, pflag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		log.Error("autoscaler: bad configuration", "err", err.Error())
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, c, log); err != nil {
		log.Error("autoscaler: stopped on an error", "err", err.Error())
		os.Exit(1)
	}
}

// parseConfig reads the flags (in the caveat CLI's style: --api, -a) and
// the environment, and checks the result, the token included. The usage
// goes to help (stdout), never to the log.
func parseConfig(args []string, getenv func(string) string, help io.Writer) (Config, error) {
	var c Config
	fs := pflag.NewFlagSet("autoscaler", pflag.ContinueOnError)
	fs.SetOutput(help)
	api := getenv("CAVEAT_API_URL")
	if api == "" {
		api = "http://127.0.0.1:8080"
	}
	fs.StringVar(&c.API, "api", api, "caveat server URL (CAVEAT_API_URL)")
	fs.StringVarP(&c.App, "app", "a", "", "the app whose machines to scale")
	fs.StringVar(&c.Queue, "queue", "celery", "the Celery queue (a Redis list)")
	fs.StringVar(&c.Redis, "redis", "redis://127.0.0.1:6379/0", "the Celery broker's Redis URL")
	fs.IntVar(&c.Min, "min", 0, "fewest started machines")
	fs.IntVar(&c.Max, "max", 4, "most started machines")
	fs.IntVar(&c.PerMachine, "per-machine", 10, "queued tasks per started machine")
	fs.DurationVar(&c.Cooldown, "cooldown", 30*time.Second, "least time between scaling up and scaling down")
	fs.DurationVar(&c.Interval, "interval", 5*time.Second, "how often to look at the queue")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q: the autoscaler takes only flags", fs.Arg(0))
	}
	c.Token = getenv("CAVEAT_TOKEN")
	return c, c.check()
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func (c Config) check() error {
	switch {
	case c.Token == "":
		return errors.New("set CAVEAT_TOKEN to the autoscaler's token")
	case !validToken(c.Token):
		return errors.New("CAVEAT_TOKEN is not a valid token (want \"FlyV1 fm2_…\"): was it cut when pasted? 'caveat tokens debug' shows what is wrong")
	case c.App == "":
		return errors.New("--app is required")
	case c.Min < 0 || c.Max < c.Min:
		return fmt.Errorf("need 0 <= --min (%d) <= --max (%d)", c.Min, c.Max)
	case c.PerMachine < 1:
		return errors.New("--per-machine must be at least 1")
	case c.Interval <= 0:
		return errors.New("--interval must be positive")
	}
	return nil
}

// validToken reports whether the token parses as a bundle; nothing about
// it is logged.
func validToken(t string) bool {
	_, err := caveat.ParseBundle(t)
	return err == nil
}

// redisLog routes the Redis client's own messages into the JSON log, so
// that every line the autoscaler writes is JSON.
type redisLog struct{ log *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	r.log.WarnContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
}

// Run scales until ctx is done.
func Run(ctx context.Context, c Config, log *slog.Logger) error {
	redis.SetLogger(redisLog{log})
	opt, err := redis.ParseURL(c.Redis)
	if err != nil {
		return fmt.Errorf("--redis: %w", err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	s := &scaler{cfg: c, log: log, api: newAPI(c.API, c.Token), queue: func(ctx context.Context) (int64, error) {
		return rdb.LLen(ctx, c.Queue).Result()
	}, now: time.Now}
	log.Info("autoscaler started", "app", c.App, "queue", c.Queue, "min", c.Min, "max", c.Max, "per_machine", c.PerMachine)
	t := time.NewTicker(c.Interval)
	defer t.Stop()
	for {
		s.tick(ctx)
		select {
		case <-ctx.Done():
			log.Info("autoscaler stopped")
			return nil
		case <-t.C:
		}
	}
}
