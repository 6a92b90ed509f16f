package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/caveatdev/caveat/internal/lifetime"
	"github.com/caveatdev/caveat/server"
	"github.com/caveatdev/caveat/store/open"
	"github.com/caveatdev/caveat/store/sqlite"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// serverFlagEnv maps each flag of "caveat server" to the environment
// variable that sets it when the flag is not given.
var serverFlagEnv = []struct{ flag, env string }{
	{"listen", "CAVEAT_LISTEN"},
	{"data", "CAVEAT_DATA"},
	{"db", "CAVEAT_DB"},
	{"public-url", "CAVEAT_PUBLIC_URL"},
	{"master-key-file", "CAVEAT_MASTER_KEY_FILE"},
	{"discharge-ttl", "CAVEAT_DISCHARGE_TTL"},
	{"session-ttl", "CAVEAT_SESSION_TTL"},
	{"roles", "CAVEAT_ROLES"},
	{"signup", "CAVEAT_SIGNUP"},
	{"machine-transition-time", "CAVEAT_MACHINE_TRANSITION_TIME"},
	{"revocation-settle", "CAVEAT_REVOCATION_SETTLE"},
	{"log-level", "CAVEAT_LOG_LEVEL"},
	{"tls-cert", "CAVEAT_TLS_CERT"},
	{"tls-key", "CAVEAT_TLS_KEY"},
	{"metrics-listen", "CAVEAT_METRICS_LISTEN"},
	{"require-discharge-binding", "CAVEAT_REQUIRE_DISCHARGE_BINDING"},
	{"retention", "CAVEAT_RETENTION"},
}

func (a *app) serverCommand() *cobra.Command {
	var (
		cfg      server.Config
		roles    string
		logLevel string
	)
	c := &cobra.Command{
		Use:   "server [flags]",
		Short: "Run the caveat server: authority, login service and APIs",
		Long: `Run a caveat server on one port: the token authority (/v1/tokens, /v1/orgs,
/v1/apps), the login service and its discharger (/aaa/v1), the Machines API
(/v1/apps/{app}/machines, no VMs: machines are records whose transitions take
--machine-transition-time), the web console (/: log in with the account's
email and password), /healthz and /metrics (Prometheus; on a separate
address with --metrics-listen, and then not on the main one).

With --tls-cert and --tls-key it serves HTTPS only, and re-reads both files
on SIGHUP (connections in flight are not dropped); the default public URL is
then https://<listen address>. 'caveat server backup' copies the SQLite
database while the server runs.

With no flags it listens on 127.0.0.1:8080 and keeps everything under
./caveat-data: the SQLite database (caveat.db) and the master key
(master.key, generated on first start, mode 0600). Back the master key up:
without it the organizations' keys cannot be opened. Several replicas share
one PostgreSQL (--db postgres://…) and one master key file.

Token locations are <public-url>/v1 for permission tokens and
<public-url>/aaa/v1 for the login discharger; set --public-url to the URL
clients use when the server is behind a proxy.

Every flag can also be set by its environment variable (the flag wins):
` + serverEnvHelp() + `
Logs are JSON lines on stderr. Tokens, keys, passwords and discharges are
never logged. SIGINT or SIGTERM shut the server down gracefully.`,
		Example: `  caveat server
  caveat server --listen 0.0.0.0:8080 --public-url https://caveat.example.com
  caveat server --listen 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem --public-url https://caveat.example.com:8443
  CAVEAT_DB=postgres://caveat@db/caveat caveat server --master-key-file /etc/caveat/master.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.flagsFromEnv(cmd.Flags()); err != nil {
				return err
			}
			if roles != "" && roles != "all" {
				for _, r := range strings.Split(roles, ",") {
					cfg.Roles = append(cfg.Roles, strings.TrimSpace(r))
				}
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usageError(cmd, "--log-level: %q is not one of debug, info, warn, error", logLevel)
			}
			cfg.Logger = slog.New(slog.NewJSONHandler(a.stderr, &slog.HandlerOptions{Level: level}))
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			srv, err := server.New(ctx, cfg)
			if err != nil {
				return failf("server: %v", err)
			}
			if err := srv.Run(ctx); err != nil {
				return failf("server: %v", err)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&cfg.Listen, "listen", server.DefaultListen, "address to listen on (port 0 picks one)")
	f.StringVar(&cfg.DataDir, "data", server.DefaultDataDir, "data directory: SQLite database and generated master key")
	f.StringVar(&cfg.DB, "db", "", "SQLite file or postgres:// URL (default <data>/caveat.db)")
	f.StringVar(&cfg.PublicURL, "public-url", "", "base URL clients use (default http://<listen address>)")
	f.StringVar(&cfg.MasterKeyFile, "master-key-file", "", "master key file (default <data>/master.key, generated if missing)")
	f.DurationVar(&cfg.DischargeTTL, "discharge-ttl", server.DefaultDischargeTTL, "lifetime of login discharges; clients renew them")
	f.DurationVar(&cfg.SessionTTL, "session-ttl", server.DefaultSessionTTL, "lifetime of a login session")
	f.StringVar(&roles, "roles", "all", "comma-separated roles to serve: "+strings.Join(server.AllRoles, ", ")+", or all")
	f.BoolVar(&cfg.Signup, "signup", true, "allow new users to sign up (the first user always can)")
	f.DurationVar(&cfg.MachineTransitionTime, "machine-transition-time", server.DefaultMachineTransitionTime,
		"how long each simulated machine transition (starting, stopping, …) of the Machines API takes")
	f.DurationVar(&cfg.RevocationSettle, "revocation-settle", server.DefaultRevocationSettle,
		"serve cached token verifications only this long after the revocation feed was last read; past it, check the database (503 if down)")
	cfg.Retention = server.DefaultRetention
	f.Var(daysFlag{&cfg.Retention}, "retention",
		"how long expired tokens are kept before housekeeping deletes them, with their revocations (e.g. 90d, 720h)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate (chain) to serve HTTPS with; re-read on SIGHUP")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	f.StringVar(&cfg.MetricsListen, "metrics-listen", "", "serve /metrics and /healthz on this address instead of the main one")
	f.BoolVar(&cfg.RequireDischargeBinding, "require-discharge-binding", false,
		"refuse login discharges that are not bound to their parent token (clients that do not send parent_binding, such as Fly's reference tp client, are then refused)")
	c.AddCommand(a.serverBackupCommand())
	return c
}

func (a *app) serverBackupCommand() *cobra.Command {
	var data, db string
	c := &cobra.Command{
		Use:   "backup OUT",
		Short: "Write a consistent copy of the SQLite database, while the server runs",
		Long: `Write a consistent copy of the server's SQLite database to OUT (a new file,
mode 0600), while the server keeps running: SQLite's VACUUM INTO reads one
snapshot. The copy is checked (PRAGMA integrity_check) before the command
succeeds. OUT is never overwritten.

To restore: stop the server, remove caveat.db, caveat.db-wal and
caveat.db-shm from the data directory, copy the backup to caveat.db, start.

The master key is not in the database: back up master.key separately (and
keep it apart from the database backups). For PostgreSQL, use pg_dump.`,
		Example: `  caveat server backup caveat-$(date +%F).db
  caveat server backup --data /var/lib/caveat /backups/caveat.db`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError(cmd, "backup takes one argument, the file to write (got %d)", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if db == "" {
				db = a.env("CAVEAT_DB")
			}
			if data == "" {
				data = a.env("CAVEAT_DATA")
			}
			if data == "" {
				data = server.DefaultDataDir
			}
			if db == "" {
				db = filepath.Join(data, "caveat.db")
			}
			kind, err := open.Kind(db)
			if err != nil {
				return failf("--db: %v", err)
			}
			if kind == "postgres" {
				return failf("backup copies SQLite databases; --db names PostgreSQL").
					withHint("use pg_dump (pg_dump --format=custom \"$CAVEAT_DB\" > caveat.dump), and back up the master key separately")
			}
			if err := sqlite.Backup(cmd.Context(), db, args[0]); err != nil {
				return failf("%v", err)
			}
			a.info("wrote %s (a copy of %s); back up the master key separately", args[0], db)
			return nil
		},
	}
	c.Flags().StringVar(&data, "data", "", "data directory of the server (default $CAVEAT_DATA or ./caveat-data)")
	c.Flags().StringVar(&db, "db", "", "the SQLite database (default $CAVEAT_DB or <data>/caveat.db)")
	return c
}

// daysFlag is a duration flag that also takes days ("90d"), in the
// forms of package lifetime.
type daysFlag struct{ d *time.Duration }

func (f daysFlag) String() string {
	if f.d == nil {
		return ""
	}
	if day := 24 * time.Hour; *f.d > 0 && *f.d%day == 0 {
		return fmt.Sprintf("%dd", *f.d/day)
	}
	return f.d.String()
}

func (f daysFlag) Set(s string) error {
	d, err := lifetime.Parse(s)
	if err != nil {
		return err
	}
	*f.d = d
	return nil
}

func (f daysFlag) Type() string { return "duration" }

func serverEnvHelp() string {
	var b strings.Builder
	for _, fe := range serverFlagEnv {
		fmt.Fprintf(&b, "  %-24s --%s\n", fe.env, fe.flag)
	}
	return b.String()
}

// flagsFromEnv sets each flag that was not given from its environment
// variable.
func (a *app) flagsFromEnv(fs *pflag.FlagSet) error {
	for _, fe := range serverFlagEnv {
		v := a.env(fe.env)
		if v == "" || fs.Changed(fe.flag) {
			continue
		}
		if err := fs.Set(fe.flag, v); err != nil {
			return failf("%s=%q: %v", fe.env, v, err).withHint("unset it, or give --%s", fe.flag)
		}
	}
	return nil
}
