package deephaven_test

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven"
)

func TestTLS(t *testing.T) {
	cert := testenv.SelfSignedCert(t)
	srv := testenv.StartDeephaven(t, testenv.DeephavenOptions{TLSCertFile: cert.CertFile, TLSKeyFile: cert.KeyFile})
	c := dial(t, srv.Addr(), deephaven.WithTLS(&tls.Config{RootCAs: cert.Pool, MinVersion: tls.VersionTLS12}))
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
