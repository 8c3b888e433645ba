package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const secret = "s3cr3t-PSK-value"

func pskConfig(keyFile, keyEnv string) *Config {
	cfg := minimalWant()
	cfg.Deephaven.Auth = AuthConfig{Type: AuthPSK, KeyFile: keyFile, KeyEnv: keyEnv}
	return cfg
}

// getenv is a fake os.Getenv over a fixed environment.
func getenv(env map[string]string) func(string) string {
	return func(name string) string { return env[name] }
}

func TestResolvePSK(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "psk")
	if err := os.WriteFile(keyFile, []byte("  "+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := getenv(map[string]string{"DH_PSK": "\t" + secret + " \n"})

	for _, tc := range []struct {
		name string
		cfg  *Config
	}{
		{"file", pskConfig(keyFile, "")},
		{"env", pskConfig("", "DH_PSK")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.cfg.ResolvePSK(env)
			if err != nil {
				t.Fatal(err)
			}
			if got != secret {
				t.Errorf("ResolvePSK() = %q, want %q", got, secret)
			}
		})
	}

	t.Run("anonymous", func(t *testing.T) {
		got, err := minimalWant().ResolvePSK(env)
		if got != "" || err != nil {
			t.Errorf("ResolvePSK() = %q, %v; want \"\", nil", got, err)
		}
	})
}

func TestResolvePSKErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	blank := write("blank", " \n\t\n")
	// Too large: the secret must not leak through a "file too large" error.
	huge := write("huge", secret+strings.Repeat("x", maxKeyFileBytes))
	missing := filepath.Join(dir, "missing")
	env := getenv(map[string]string{"BLANK": "  \n", "OTHER": secret})

	for _, tc := range []struct {
		name string
		cfg  *Config
		want string
	}{
		{"blank file", pskConfig(blank, ""), "deephaven.auth.key_file: " + blank + " is empty"},
		{"huge file", pskConfig(huge, ""), "deephaven.auth.key_file: " + huge + " is larger than 65536 bytes"},
		{"missing file", pskConfig(missing, ""), "deephaven.auth.key_file: open " + missing + ": no such file or directory"},
		{"directory", pskConfig(dir, ""), "deephaven.auth.key_file: read " + dir + ": is a directory"},
		{"blank env", pskConfig("", "BLANK"), "deephaven.auth.key_env: environment variable BLANK is empty or not set"},
		{"unset env", pskConfig("", "UNSET"), "deephaven.auth.key_env: environment variable UNSET is empty or not set"},
		{"no source", pskConfig("", ""), "deephaven.auth: type psk needs key_file or key_env"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.cfg.ResolvePSK(env)
			if err == nil {
				t.Fatalf("ResolvePSK() = %q, want error", got)
			}
			if got != "" {
				t.Errorf("ResolvePSK() returned key %q with an error", got)
			}
			if err.Error() != tc.want {
				t.Errorf("error:\n got %q\nwant %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q contains the key", err)
			}
		})
	}
}

// TestStringHasNoSecret checks that printing a configuration that uses a PSK
// shows where the key is, not the key.
func TestStringHasNoSecret(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "psk")
	if err := os.WriteFile(keyFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := pskConfig(keyFile, "")
	if _, err := cfg.ResolvePSK(os.Getenv); err != nil {
		t.Fatal(err)
	}
	s := cfg.String()
	if strings.Contains(s, secret) {
		t.Errorf("String() contains the key:\n%s", s)
	}
	if !strings.Contains(s, keyFile) {
		t.Errorf("String() does not name the key file:\n%s", s)
	}
}
