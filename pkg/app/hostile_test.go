package app_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/alerts"
)

// Every hostile or broken body of the webhook corpus (pkg/alerts/testdata)
// gets a 4xx naming the problem from the running bridge; the process stays
// up and the table keeps only what valid requests brought.
func TestHostileCorpusOverHTTP(t *testing.T) {
	dh := testenv.Deephaven(t)
	b := startBridge(t, bridgeSetup{Deephaven: dh})
	c := client(t, dh)
	dir := filepath.Join(testenv.RepoRoot(t), "pkg", "alerts", "testdata")
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) < 20 {
		t.Fatalf("corpus: %d files, %v", len(files), err)
	}
	type body struct {
		name string
		data []byte
	}
	var bad []body
	keys := map[any]bool{} // distinct alert events across all valid files
	var valid []body
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := alerts.Decode(data, alerts.Options{})
		if err != nil {
			bad = append(bad, body{filepath.Base(f), data})
			continue
		}
		valid = append(valid, body{filepath.Base(f), data})
		for _, r := range msg.Rows(context.Background(), time.Now(), alerts.Options{}) {
			keys[r.Key()] = true
		}
	}
	validRows := len(keys)
	// Generated hostile bodies too big to keep in the repo.
	huge := bytes.Repeat([]byte(" "), 50<<20)
	copy(huge, `{"alerts":[`)
	bad = append(bad,
		body{"50MB body", huge},
		body{"deeply nested", []byte(strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000))},
		body{"10,000 labels", manyLabels(10000)},
	)
	for _, bb := range bad {
		resp, err := http.Post(b.URL+"/alerts", "application/json", bytes.NewReader(bb.data))
		if err != nil {
			t.Fatalf("%s: %v (the bridge must stay up)", bb.name, err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 400 || resp.StatusCode >= 500 || len(bytes.TrimSpace(msg)) < 10 {
			t.Errorf("%s: %d %q, want a 4xx that names the problem", bb.name, resp.StatusCode, msg)
		}
	}
	if rs := readTable(t, c, b.Tables[0]); len(rs) != 0 {
		t.Fatalf("%d rows after only bad requests, want 0", len(rs))
	}
	for _, vb := range valid {
		if code, msg := post(t, b.URL+"/alerts", string(vb.data)); code != 200 {
			t.Errorf("valid %s: %d %s", vb.name, code, msg)
		}
	}
	// A verbose alert near max_body_bytes (4 MiB) is stored whole: direct
	// mode has no record limit below the body's (Kafka mode cuts it).
	big := strings.Repeat("d", 3<<20)
	if code, msg := post(t, b.URL+"/alerts", fmt.Sprintf(`{"version":"4","status":"firing","receiver":"r","alerts":[{"status":"firing",`+
		`"labels":{"alertname":"Verbose"},"annotations":{"description":%q},"startsAt":"2026-11-30T00:00:00Z",`+
		`"endsAt":"0001-01-01T00:00:00Z","fingerprint":"00000000000000bb"}]}`, big)); code != 200 {
		t.Errorf("an alert of 3 MiB: %d %s", code, msg)
	}
	rs := readTable(t, c, b.Tables[0])
	if len(rs) != validRows+1 {
		t.Fatalf("%d rows, want the %d rows of the %d valid corpus files and the verbose alert", len(rs), validRows, len(valid))
	}
	verbose := 0
	for _, r := range rs {
		if r["Fingerprint"] != "00000000000000bb" {
			continue
		}
		verbose++
		if a, _ := r["Annotations"].(string); a != `{description="`+big+`"}` {
			t.Errorf("the verbose alert's annotations: %d bytes, want %d", len(a), len(big)+16)
		}
	}
	if verbose != 1 {
		t.Errorf("%d rows of the verbose alert, want 1", verbose)
	}
	t.Logf("%d bad bodies refused with 4xx, %d valid files stored as %d rows", len(bad), len(valid), validRows)
}

func manyLabels(n int) []byte {
	var sb strings.Builder
	sb.WriteString(`{"version":"4","status":"firing","receiver":"r","alerts":[{"status":"firing","labels":{"alertname":"Many"`)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, `,"l%d":"v"`, i)
	}
	sb.WriteString(`},"annotations":{},"startsAt":"2026-11-30T00:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"00000000000000aa"}]}`)
	return []byte(sb.String())
}
