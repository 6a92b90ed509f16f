//go:build unix

package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate for 127.0.0.1 with the given
// serial, and its key, into dir, and returns the certificate.
func writeCert(t *testing.T, dir string, serial int64) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "caveat test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	// Written to temporary names and renamed, as certificate tools do.
	for name, block := range map[string]*pem.Block{"cert.pem": {Type: "CERTIFICATE", Bytes: der}, "key.pem": {Type: "EC PRIVATE KEY", Bytes: kb}} {
		tmp := filepath.Join(dir, name+".tmp")
		if err := os.WriteFile(tmp, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// client trusts exactly the given certificates and reports the serial of
// the certificate each connection was served.
func tlsClient(certs ...*x509.Certificate) *http.Client {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func servedSerial(t *testing.T, c *http.Client, url string) int64 {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	first := writeCert(t, dir, 1)
	s := runServer(t, Config{Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "data"),
		TLSCert: filepath.Join(dir, "cert.pem"), TLSKey: filepath.Join(dir, "key.pem"),
		Logger: slog.New(slog.DiscardHandler)})
	if !strings.HasPrefix(s.URL(), "https://") || !strings.HasPrefix(s.TokenLocation(), "https://") {
		t.Fatalf("with TLS the public URL is %s", s.URL())
	}
	old := tlsClient(first)
	if got := servedSerial(t, old, s.URL()+"/healthz"); got != 1 {
		t.Fatalf("served certificate %d, want 1", got)
	}
	// Plain HTTP gets no answer it could mistake for the API.
	if resp, err := http.Get("http://" + s.Addr().String() + "/healthz"); err == nil {
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP: %d", resp.StatusCode)
		}
		resp.Body.Close()
	}

	// A renewed certificate, announced by SIGHUP: new connections get it,
	// the open keep-alive connection goes on.
	second := writeCert(t, dir, 2)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	both := tlsClient(first, second)
	deadline := time.Now().Add(5 * time.Second)
	for servedSerial(t, both, s.URL()+"/healthz") != 2 {
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP did not reload the certificate within 5 s")
		}
		both.CloseIdleConnections()
		time.Sleep(20 * time.Millisecond)
	}
	if got := servedSerial(t, old, s.URL()+"/healthz"); got != 1 {
		t.Errorf("the open connection was served certificate %d after the reload, want 1 (not dropped)", got)
	}

	// A broken file does not take the server down: the current one stays.
	os.WriteFile(filepath.Join(dir, "cert.pem"), []byte("not a certificate"), 0o600)
	if err := s.ReloadTLS(); err == nil {
		t.Error("reloading a broken certificate succeeded")
	}
	both.CloseIdleConnections()
	if got := servedSerial(t, both, s.URL()+"/healthz"); got != 2 {
		t.Errorf("after a failed reload the server serves certificate %d, want 2", got)
	}
}

func TestTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name      string
		cert, key string
		want      string
	}{
		{"cert without key", "cert.pem", "", "both"},
		{"missing files", "nope.pem", "nope.key", "nope.pem"},
	} {
		cfg := Config{Listen: "127.0.0.1:0", DataDir: dir, Logger: slog.New(slog.DiscardHandler)}
		if c.cert != "" {
			cfg.TLSCert = filepath.Join(dir, c.cert)
		}
		if c.key != "" {
			cfg.TLSKey = filepath.Join(dir, c.key)
		}
		s, err := New(context.Background(), cfg)
		if err == nil {
			s.Close()
			t.Errorf("%s: started", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want it to mention %q", c.name, err, c.want)
		}
	}
}

func TestMetricsListener(t *testing.T) {
	dir := t.TempDir()
	s := runServer(t, Config{Listen: "127.0.0.1:0", DataDir: dir, MetricsListen: "127.0.0.1:0",
		Logger: slog.New(slog.DiscardHandler)})
	if code, body := get(t, s.URL()+"/healthz"); code != 200 {
		t.Fatalf("healthz: %d %s", code, body)
	}
	if code, _ := get(t, s.URL()+"/metrics"); code != 404 {
		t.Errorf("/metrics on the main listener with --metrics-listen: %d, want 404", code)
	}
	m := "http://" + s.MetricsAddr().String()
	if code, body := get(t, m+"/metrics"); code != 200 || !strings.Contains(body, `caveat_http_requests_total{code="200",method="GET",route="GET /healthz"}`) {
		t.Errorf("metrics listener /metrics: %d %.300s", code, body)
	}
	if code, _ := get(t, m+"/healthz"); code != 200 {
		t.Errorf("metrics listener /healthz: %d", code)
	}
	if code, _ := get(t, m+"/v1/orgs"); code != 404 {
		t.Errorf("the metrics listener serves the API: %d", code)
	}
}
