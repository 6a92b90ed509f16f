package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync"
	"time"
)

// certificate holds the server's TLS certificate and key, read from their
// files at start and again on Reload (SIGHUP), so that a renewed
// certificate is served without a restart and without dropping a
// connection: each TLS handshake asks for the current one.
type certificate struct {
	certFile, keyFile string

	mu   sync.RWMutex
	cert *tls.Certificate
}

func loadCertificate(certFile, keyFile string) (*certificate, error) {
	c := &certificate{certFile: certFile, keyFile: keyFile}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload reads the files again. On failure the certificate in use stays.
func (c *certificate) Reload() error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate %s and key %s: %w", c.certFile, c.keyFile, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return fmt.Errorf("TLS certificate %s: %w", c.certFile, err)
	}
	cert.Leaf = leaf
	c.mu.Lock()
	c.cert = &cert
	c.mu.Unlock()
	return nil
}

// NotAfter is the end of the current certificate's validity.
func (c *certificate) NotAfter() time.Time {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cert.Leaf.NotAfter
}

func (c *certificate) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cert, nil
}

func (c *certificate) config() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.get}
}
