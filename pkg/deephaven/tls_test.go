package deephaven_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
)

// selfSigned writes a certificate for 127.0.0.1/localhost and its key.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	srv := testenv.StartDeephaven(t, testenv.DeephavenOptions{TLSCertFile: certFile, TLSKeyFile: keyFile})
	c := dial(t, srv.Addr(), deephaven.WithTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	ctx := ctxT(t)
	r := kv([]string{"tls"}, []float64{1}, []int64{1})
	defer r.Release()
	it, err := c.CreateInputTable(ctx, uniqueName("over_tls"), kvSchema)
	if err != nil {
		t.Fatal(err)
	}
	if err := it.Add(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, cols := snapshot(t, c, it.Table()); len(cols["K"]) != 1 {
		t.Fatalf("read back %v over TLS", cols)
	}
	// A client that does not trust the certificate is refused, and so is a
	// plaintext client.
	for name, opts := range map[string][]deephaven.Option{
		"untrusted": {deephaven.WithTLS(&tls.Config{MinVersion: tls.VersionTLS12})},
		"plaintext": nil,
	} {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if _, err := deephaven.Dial(dctx, srv.Addr(), opts...); err == nil {
			t.Errorf("%s client connected to a TLS server", name)
		}
		cancel()
	}
}
