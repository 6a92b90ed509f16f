package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/caveatdev/caveat/authority"
	"github.com/caveatdev/caveat/identity"
	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/keyring"
	"github.com/caveatdev/caveat/machines"
	"github.com/caveatdev/caveat/store"
	"github.com/caveatdev/caveat/store/open"
)

// Server is a running (or ready to run) caveat server.
type Server struct {
	cfg       Config
	log       *slog.Logger
	store     store.Store
	keyring   *keyring.Keyring
	authority *authority.Service
	identity  *identity.Service // nil without the identity role
	machines  *machines.Service // nil without the machines role
	metrics   *metrics
	// housekeeper purges what has expired, while it holds the lease.
	housekeeper *housekeeper

	ln   net.Listener
	http *http.Server
	url  string
	cert *certificate // nil without TLS

	metricsLn   net.Listener // nil without Config.MetricsListen
	metricsHTTP *http.Server

	closeOnce sync.Once
	closeErr  error
}

// New opens the store and the master key and listens on cfg.Listen; it
// does not serve yet (see Start). The token locations need the public URL,
// which, when cfg.PublicURL is empty, is only known once listening.
func New(ctx context.Context, cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	s := &Server{cfg: cfg, log: log}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	master, generated, err := loadMasterKey(cfg.MasterKeyFile, true)
	if err != nil {
		return nil, err
	}
	if generated {
		log.Warn("generated a new master key; back it up, and give the same file to every replica",
			"file", cfg.MasterKeyFile)
	}
	s.store, err = openStore(ctx, cfg.DB)
	if err != nil {
		return nil, err
	}
	if cfg.TLSCert != "" {
		if s.cert, err = loadCertificate(cfg.TLSCert, cfg.TLSKey); err != nil {
			s.store.Close()
			return nil, err
		}
	}
	s.ln, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		s.store.Close()
		return nil, fmt.Errorf("listen: %w", err)
	}
	if cfg.MetricsListen != "" {
		if s.metricsLn, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			s.Close()
			return nil, fmt.Errorf("listen for metrics: %w", err)
		}
	}
	s.url = cfg.PublicURL
	if s.url == "" {
		scheme := "http://"
		if s.cert != nil {
			scheme = "https://"
		}
		s.url = scheme + s.ln.Addr().String()
	}
	s.keyring = keyring.NewKeyring(master, s.store, cfg.Now)
	s.authority, err = authority.New(authority.Config{
		Store:            s.store,
		Keyring:          s.keyring,
		Location:         s.TokenLocation(),
		LoginLocation:    s.LoginLocation(),
		Now:              cfg.Now,
		Logger:           log.With("service", "authority"),
		RevocationSettle: cfg.RevocationSettle,
		CacheBytes:       cfg.CacheBytes,
	})
	if err != nil {
		s.Close()
		return nil, err
	}
	s.housekeeper = newHousekeeper(s.store, cfg, log.With("service", "housekeeping"))
	s.metrics = newMetrics()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	if s.metricsLn == nil {
		mux.Handle("GET /metrics", s.metrics.handler())
	} else {
		mmux := http.NewServeMux()
		mmux.HandleFunc("GET /healthz", s.healthz)
		mmux.Handle("GET /metrics", s.metrics.handler())
		s.metricsHTTP = &http.Server{Handler: httpjson.Routes(mmux), ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	}
	if cfg.has(RoleAuthority) {
		s.authority.Register(mux)
	}
	if err := s.registerIdentity(mux); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.registerMachines(mux); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.registerConsole(mux); err != nil {
		s.Close()
		return nil, err
	}
	s.http = &http.Server{
		Handler:           s.metrics.instrument(s.logRequests(httpjson.Routes(mux))),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if s.cert != nil {
		s.http.TLSConfig = s.cert.config()
	}
	return s, nil
}

// ReloadTLS re-reads the TLS certificate and key files; connections in
// flight keep theirs, new handshakes get the new one. On failure the
// certificate in use stays. Run calls it on SIGHUP.
func (s *Server) ReloadTLS() error {
	if s.cert == nil {
		return errors.New("TLS is not configured")
	}
	if err := s.cert.Reload(); err != nil {
		return err
	}
	s.log.Info("TLS certificate reloaded", "not_after", s.cert.NotAfter())
	return nil
}

// MetricsAddr is the address of the metrics listener, or nil.
func (s *Server) MetricsAddr() net.Addr {
	if s.metricsLn == nil {
		return nil
	}
	return s.metricsLn.Addr()
}

// openStore opens the backend the DSN names (store/open: a postgres:// URL
// or a SQLite path; another scheme, such as a misspelt "postgress://", is
// an error rather than a file name). The error never holds the DSN, which
// may carry a password.
func openStore(ctx context.Context, dsn string) (store.Store, error) {
	kind, err := open.Kind(dsn)
	if err != nil {
		return nil, err
	}
	db, err := open.Open(ctx, dsn)
	switch {
	case err != nil && kind == "postgres":
		return nil, fmt.Errorf("open PostgreSQL database: %w", err)
	case err != nil:
		return nil, fmt.Errorf("open SQLite database %s: %w", dsn, err)
	}
	return db, nil
}

// URL is the server's public base URL.
func (s *Server) URL() string { return s.url }

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// TokenLocation is the location of the permission tokens it mints.
func (s *Server) TokenLocation() string { return s.url + "/v1" }

// LoginLocation is the location of its login discharger.
func (s *Server) LoginLocation() string { return s.url + "/aaa/v1" }

// Store returns the server's store, for tests and tools.
func (s *Server) Store() store.Store { return s.store }

// Run serves until ctx is done, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	// Follow the revocation feed, so that revocations made through other
	// replicas reach this one's cache of verified tokens.
	followCtx, stopFollowing := context.WithCancel(ctx)
	defer stopFollowing()
	if s.cert != nil {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for {
				select {
				case <-followCtx.Done():
					return
				case <-hup:
					if err := s.ReloadTLS(); err != nil {
						s.log.Error("reloading the TLS certificate; still serving the previous one", "err", err)
					}
				}
			}
		}()
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve() }()
	go s.authority.Run(followCtx)
	// Housekeeping hands its lease back before the store closes.
	housekept := make(chan struct{})
	go func() {
		defer close(housekept)
		s.housekeeper.run(followCtx)
	}()
	if s.metricsHTTP != nil {
		go func() {
			if err := s.metricsHTTP.Serve(s.metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("metrics listener", "err", err)
			}
		}()
	}
	attrs := []any{"addr", s.ln.Addr().String(), "url", s.url, "roles", s.cfg.Roles, "tls", s.cert != nil}
	if s.metricsLn != nil {
		attrs = append(attrs, "metrics_addr", s.metricsLn.Addr().String())
	}
	s.log.Info("caveat server listening", attrs...)
	select {
	case err := <-errc:
		stopFollowing()
		<-housekept
		s.Close()
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down")
	stopFollowing()
	<-housekept
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err := s.Shutdown(sctx)
	if serr := <-errc; serr != nil && err == nil {
		err = serr
	}
	return err
}

// Serve serves on the listener until Shutdown; it returns nil after a
// graceful shutdown.
func (s *Server) Serve() error {
	var err error
	if s.cert != nil {
		err = s.http.ServeTLS(s.ln, "", "")
	} else {
		err = s.http.Serve(s.ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting requests, waits for those in flight (until ctx
// is done), and closes the store.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.metricsHTTP != nil {
		s.metricsHTTP.Shutdown(ctx)
	}
	err := s.http.Shutdown(ctx)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close closes the listener and the store without waiting.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.ln != nil {
			s.ln.Close()
		}
		if s.metricsLn != nil {
			s.metricsLn.Close()
		}
		if s.store != nil {
			s.closeErr = s.store.Close()
		}
	})
	return s.closeErr
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.ErrorContext(ctx, "health check: store", "err", err)
		httpjson.Write(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "database unreachable"})
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
}

// logRequests logs one line per request. It logs the route pattern, never
// the path: paths can hold secrets (poll and login URLs), and headers
// (tokens) are never logged at all.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method), slog.String("route", route(r)),
			slog.Int("status", sw.code()), slog.Float64("ms", float64(time.Since(start).Microseconds())/1000))
	})
}

// route is the mux pattern that served r, or "unmatched".
func route(r *http.Request) string {
	if r.Pattern != "" {
		return r.Pattern
	}
	return "unmatched"
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
