package deephaven

import (
	"encoding/base64"
	"fmt"
	"os"
	"strings"
)

// pskHandler is the type name of Deephaven's pre-shared-key authentication
// handler: the first word of the authorization header selects the handler.
const pskHandler = "io.deephaven.authentication.psk.PskAuthenticationHandler"

// Auth is how the client proves who it is when a session starts. Its String
// method never shows the secret.
type Auth struct {
	kind   string
	header string // the initial authorization header value
}

// Anonymous is the auth of a server started with the anonymous handler.
func Anonymous() Auth { return Auth{kind: "anonymous", header: "Anonymous"} }

// PreSharedKey authenticates with the server's pre-shared key
// (the server property authentication.psk).
func PreSharedKey(key string) Auth {
	return Auth{kind: "psk", header: pskHandler + " " + key}
}

// PreSharedKeyFromFile reads a pre-shared key from a file, trimming
// surrounding white space. Errors never contain the key.
func PreSharedKeyFromFile(path string) (Auth, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Auth{}, fmt.Errorf("deephaven: read pre-shared key file: %w", err)
	}
	key := strings.TrimSpace(string(b))
	if key == "" {
		return Auth{}, fmt.Errorf("deephaven: pre-shared key file %s is empty", path)
	}
	return PreSharedKey(key), nil
}

// PreSharedKeyFromEnv reads a pre-shared key from an environment variable.
func PreSharedKeyFromEnv(name string) (Auth, error) {
	key := strings.TrimSpace(os.Getenv(name))
	if key == "" {
		return Auth{}, fmt.Errorf("deephaven: environment variable %s holds no pre-shared key", name)
	}
	return PreSharedKey(key), nil
}

// Basic authenticates with a user name and password (servers with a basic
// auth handler).
func Basic(user, password string) Auth {
	return Auth{kind: "basic", header: "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))}
}

// String names the kind of auth without the secret.
func (a Auth) String() string {
	if a.kind == "" {
		return "anonymous"
	}
	return a.kind
}

// GoString keeps %#v from printing the secret too.
func (a Auth) GoString() string { return "deephaven.Auth{" + a.String() + "}" }
