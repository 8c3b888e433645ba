package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxKeyFileBytes bounds how much of a key file is read, so that a path
// pointing at the wrong file (or at /dev/zero) fails fast.
const maxKeyFileBytes = 64 << 10

// ResolvePSK returns Deephaven's pre-shared key, read from
// deephaven.auth.key_file or from the environment variable named by
// deephaven.auth.key_env (looked up with getenv, usually os.Getenv), with
// surrounding white space trimmed. With type anonymous it returns "" and no
// error. An empty key is an error. Errors never contain the key.
func (c *Config) ResolvePSK(getenv func(string) string) (string, error) {
	a := c.Deephaven.Auth
	if a.Type != AuthPSK {
		return "", nil
	}
	switch {
	case a.KeyFile != "":
		key, err := readKeyFile(a.KeyFile)
		if err != nil {
			return "", fmt.Errorf("deephaven.auth.key_file: %w", err)
		}
		if key == "" {
			return "", fmt.Errorf("deephaven.auth.key_file: %s is empty", a.KeyFile)
		}
		return key, nil
	case a.KeyEnv != "":
		if key := strings.TrimSpace(getenv(a.KeyEnv)); key != "" {
			return key, nil
		}
		return "", fmt.Errorf("deephaven.auth.key_env: environment variable %s is empty or not set", a.KeyEnv)
	default:
		return "", errors.New("deephaven.auth: type psk needs key_file or key_env")
	}
}

func readKeyFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		// An *fs.PathError: operation, path and cause, never file contents.
		return "", err
	}
	if len(b) > maxKeyFileBytes {
		return "", fmt.Errorf("%s is larger than %d bytes", path, maxKeyFileBytes)
	}
	return strings.TrimSpace(string(b)), nil
}
