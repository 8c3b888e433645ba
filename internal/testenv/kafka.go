package testenv

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// kafkaStartTimeout covers the first run's download of the broker's jars
// from Maven Central (scripts/kafka.sh fetch, 15-60 s) plus a JVM start.
const kafkaStartTimeout = 3 * time.Minute

var kafkaReadyLine = []byte("Kafka Server started")

// StartKafka starts a single-node Kafka broker (KRaft, scripts/kafka.sh)
// for t alone, on a free port, and waits until it serves. The broker keeps
// its data in a directory of t, so Stop or Kill followed by Restart brings
// the same broker back with its topics and records. It is stopped when t
// ends. Without java or mvn the test is skipped (failed under CI=true).
func StartKafka(t testing.TB) *Process {
	t.Helper()
	for _, tool := range []string{"java", "mvn"} {
		if _, err := exec.LookPath(tool); err != nil {
			Missing(t, "%s not found (the Kafka broker needs Java 17+ and Maven)", tool)
		}
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	cport, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := filepath.Join(RepoRoot(t), "scripts", "kafka.sh")
	if _, err := os.Stat(script); err != nil {
		t.Fatalf("Kafka start script: %v", err)
	}
	argv := []string{script, "run", "--data-dir", filepath.Join(dir, "kafka-data"),
		"--port", strconv.Itoa(port), "--controller-port", strconv.Itoa(cport)}
	p := newProcess(t, "kafka", port, argv, dir)
	p.startTimeout = kafkaStartTimeout
	p.ready = func(_ context.Context, p *Process, offset int64) error {
		out, err := p.logSince(offset)
		if err != nil {
			return err
		}
		if !bytes.Contains(out, kafkaReadyLine) {
			return errors.New("no 'Kafka Server started' line yet")
		}
		return nil
	}
	p.cleanup(t)
	if err := p.startAndWait(); err != nil {
		t.Fatal(err)
	}
	return p
}
