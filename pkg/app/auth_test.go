package app_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
	"golang.org/x/crypto/bcrypt"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/app"
)

// postAlertToAM hands an alert to Alertmanager's API, as Prometheus does.
// startsAt zero means now.
func postAlertToAM(t *testing.T, am string, name string, labels string, startsAt time.Time) {
	t.Helper()
	if startsAt.IsZero() {
		startsAt = time.Now()
	}
	body := fmt.Sprintf(`[{"labels":{"alertname":%q,"job":"auth","instance":"i:1"%s},"annotations":{},"startsAt":%q,"generatorURL":"http://prom/graph"}]`,
		name, labels, startsAt.UTC().Format(time.RFC3339Nano))
	resp, err := http.Post("http://"+am+"/api/v2/alerts", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("Alertmanager API: %d %s", resp.StatusCode, msg)
	}
}

func waitAlertRow(t *testing.T, b *bridge, dh, name string) {
	t.Helper()
	c := client(t, dh)
	eventually(t, 90*time.Second, func() string {
		for _, r := range readTable(t, c, b.Tables[0]) {
			if r["AlertName"] == name {
				return ""
			}
		}
		return "alert " + name + " not in the table"
	})
}

// Alertmanager delivers over TLS with basic auth (the exporter-toolkit web
// config); requests without the password, or without TLS, are refused; no
// secret shows in logs or /metrics.
func TestWebhookTLSAndBasicAuth(t *testing.T) {
	dh := testenv.Deephaven(t)
	cert := testenv.SelfSignedCert(t)
	const user, pass = "alertmanager", "s3cret-webhook-pass-4711"
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	https := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.Pool, MinVersion: tls.VersionTLS12}}}
	addr := freeAddr(t)
	b := startBridge(t, bridgeSetup{
		Deephaven: dh,
		Listen:    addr,
		WebConfig: fmt.Sprintf("tls_server_config: {cert_file: %s, key_file: %s}\nbasic_auth_users: {%s: %s}\n", cert.CertFile, cert.KeyFile, user, hash),
		HTTP:      https,
		Scheme:    "https",
		ReadyAuth: [2]string{user, pass},
		Logs:      logs,
	})
	am := testenv.StartAlertmanager(t, testenv.AlertmanagerOptions{ConfigYAML: fmt.Sprintf(`route: {receiver: bridge, group_wait: 1s, group_interval: 1s}
receivers:
- name: bridge
  webhook_configs:
  - url: https://%s/alerts
    http_config:
      basic_auth: {username: %s, password: %s}
      tls_config: {ca_file: %s}
`, addr, user, pass, cert.CertFile)})
	postAlertToAM(t, am.Addr(), "OverTLS", "", time.Time{})
	waitAlertRow(t, b, dh, "OverTLS")

	req, _ := http.NewRequest(http.MethodPost, b.URL+"/alerts", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	resp, err := https.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("request without basic auth: %d, want 401", resp.StatusCode)
	}
	if resp, err := http.Post("http://"+addr+"/alerts", "application/json", strings.NewReader("{}")); err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("plain HTTP request accepted: %d", resp.StatusCode)
		}
	}
	req, _ = http.NewRequest(http.MethodGet, b.URL+"/metrics", nil)
	req.SetBasicAuth(user, pass)
	resp, err = https.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for where, text := range map[string]string{"logs": logs.String(), "/metrics": string(metrics)} {
		if strings.Contains(text, pass) || strings.Contains(text, string(hash)) {
			t.Errorf("the webhook password shows in %s", where)
		}
	}
}

// Alertmanager's authorization setting sends a bearer token; the bridge
// checks it against alerts.bearer_token_file.
func TestWebhookBearerToken(t *testing.T) {
	dh := testenv.Deephaven(t)
	const token = "bearer-token-0123456789-secret"
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	addr := freeAddr(t)
	b := startBridge(t, bridgeSetup{Deephaven: dh, Listen: addr, Extra: "alerts: {bearer_token_file: " + tokenFile + "}\n", Logs: logs})
	am := testenv.StartAlertmanager(t, testenv.AlertmanagerOptions{ConfigYAML: fmt.Sprintf(`route: {receiver: bridge, group_wait: 1s, group_interval: 1s}
receivers:
- name: bridge
  webhook_configs:
  - url: http://%s/alerts
    http_config:
      authorization: {credentials: %s}
`, addr, token)})
	postAlertToAM(t, am.Addr(), "WithBearer", "", time.Time{})
	waitAlertRow(t, b, dh, "WithBearer")
	for _, auth := range []string{"", "Bearer wrong-token", "Basic " + token} {
		req, _ := http.NewRequest(http.MethodPost, b.URL+"/alerts", strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("Authorization %q: %d, want 401", auth, resp.StatusCode)
		}
	}
	if strings.Contains(logs.String(), token) || strings.Contains(metricsText(t, b.URL), token) {
		t.Errorf("the bearer token shows in logs or /metrics")
	}
}

// The Deephaven pre-shared key comes from the environment and never shows
// in logs or /metrics.
func TestDeephavenPSKFromEnvironment(t *testing.T) {
	const key = "psk-for-the-bridge-9f8e7d6c5b4a"
	srv := testenv.StartDeephaven(t, testenv.DeephavenOptions{PSK: key})
	logs := &syncBuffer{}
	b := startBridge(t, bridgeSetup{Deephaven: srv.Addr(), Env: map[string]string{"BRIDGE_DEEPHAVEN_PSK": key}, Logs: logs})
	start := time.Now().UTC().Format(time.RFC3339Nano)
	if code, resp := post(t, b.URL+"/alerts", notification("firing", "1111222233334444", start, "0001-01-01T00:00:00Z", map[string]string{"alertname": "PSK"})); code != 200 {
		t.Fatalf("post: %d %s", code, resp)
	}
	if strings.Contains(logs.String(), key) || strings.Contains(metricsText(t, b.URL), key) {
		t.Errorf("the pre-shared key shows in logs or /metrics")
	}
	if !strings.Contains(logs.String(), "Deephaven") {
		t.Errorf("captured no bridge logs; the check above proves nothing")
	}
}

func metricsText(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// Mutual TLS: the bridge's web config requires a client certificate, which
// Alertmanager presents through its tls_config; a client without one is
// refused.
func TestWebhookMutualTLS(t *testing.T) {
	dh := testenv.Deephaven(t)
	server := testenv.SelfSignedCert(t)
	clientCert := testenv.SelfSignedCert(t)
	addr := freeAddr(t)
	cert, err := tls.LoadX509KeyPair(clientCert.CertFile, clientCert.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	withCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: server.Pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}}
	b := startBridge(t, bridgeSetup{
		Deephaven: dh,
		Listen:    addr,
		WebConfig: fmt.Sprintf("tls_server_config: {cert_file: %s, key_file: %s, client_auth_type: RequireAndVerifyClientCert, client_ca_file: %s}\n", server.CertFile, server.KeyFile, clientCert.CertFile),
		HTTP:      withCert,
		Scheme:    "https",
	})
	am := testenv.StartAlertmanager(t, testenv.AlertmanagerOptions{ConfigYAML: fmt.Sprintf(`route: {receiver: bridge, group_wait: 1s, group_interval: 1s}
receivers:
- name: bridge
  webhook_configs:
  - url: https://%s/alerts
    http_config:
      tls_config: {ca_file: %s, cert_file: %s, key_file: %s}
`, addr, server.CertFile, clientCert.CertFile, clientCert.KeyFile)})
	postAlertToAM(t, am.Addr(), "MutualTLS", "", time.Time{})
	waitAlertRow(t, b, dh, "MutualTLS")
	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: server.Pool, MinVersion: tls.VersionTLS12}}}
	if resp, err := noCert.Post(b.URL+"/alerts", "application/json", strings.NewReader("{}")); err == nil {
		resp.Body.Close()
		t.Fatalf("a client without a certificate got %d", resp.StatusCode)
	}
}

// Basic auth in the web configuration and a bearer token in the bridge's
// configuration cannot both be satisfied by one Authorization header, so
// nobody could post: the bridge refuses the combination at start, in
// --config.check and on reload, naming both settings.
func TestBasicAuthAndBearerTokenRefused(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("t0ken-secret-value\n"), 0o600)
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	webCfg := filepath.Join(dir, "web.yml")
	os.WriteFile(webCfg, []byte(fmt.Sprintf("basic_auth_users: {alertmanager: %s}\n", hash)), 0o600)
	both := filepath.Join(dir, "both.yml")
	os.WriteFile(both, []byte(fmt.Sprintf("deephaven: {address: 127.0.0.1:1}\nprometheus: {url: http://127.0.0.1:1}\nalerts: {bearer_token_file: %s}\n", tokenFile)), 0o644)
	flags := &web.FlagConfig{WebListenAddresses: &[]string{freeAddr(t)}, WebConfigFile: &webCfg}

	wantErr := func(where string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "basic_auth_users") || !strings.Contains(err.Error(), "alerts.bearer_token_file") {
			t.Errorf("%s: %v, want an error naming basic_auth_users and alerts.bearer_token_file", where, err)
		}
		if err != nil && (strings.Contains(err.Error(), "t0ken-secret-value") || strings.Contains(err.Error(), string(hash))) {
			t.Errorf("%s: the error shows a secret: %v", where, err)
		}
	}
	wantErr("CheckConfig", app.CheckConfig(both, flags, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wantErr("Run", app.Run(ctx, app.Options{ConfigFile: both, Web: flags}))

	// Each alone is fine.
	none := ""
	if err := app.CheckConfig(both, &web.FlagConfig{WebConfigFile: &none}, nil); err != nil {
		t.Errorf("bearer token alone: %v", err)
	}
	basic := filepath.Join(dir, "basic.yml")
	os.WriteFile(basic, []byte("deephaven: {address: 127.0.0.1:1}\nprometheus: {url: http://127.0.0.1:1}\n"), 0o644)
	if err := app.CheckConfig(basic, flags, nil); err != nil {
		t.Errorf("basic auth alone: %v", err)
	}
}
