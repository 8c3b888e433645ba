package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func segPath(dir string, first uint64) string { return filepath.Join(dir, segmentName(first)) }

func truncateFile(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func patchFile(t *testing.T, path string, off int64, fn func(b []byte)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fn(b[off:])
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
}

// TestRepair damages a closed journal of records 1-10 in segments 1-4, 5-8
// and 9-10 the ways a crash (or a bad disk) can, and checks that Open keeps
// exactly the valid prefix, counts the damage, and that appends continue
// with the right sequence number and survive another reopen.
func TestRepair(t *testing.T) {
	for _, tc := range []struct {
		name          string
		delivered     uint64 // watermark before the damage
		damage        func(t *testing.T, dir string)
		corruptions   float64
		tornWrites    float64  // an unfinished last write, cut without counting as damage
		want          []uint64 // records kept
		wantDelivered uint64
		next          uint64 // seq of the next append
	}{
		{
			name:       "torn record",
			damage:     func(t *testing.T, dir string) { truncateFile(t, segPath(dir, 9), recSize+30) },
			tornWrites: 1, want: seqRange(1, 9), next: 10,
		},
		{
			name:       "torn header",
			damage:     func(t *testing.T, dir string) { truncateFile(t, segPath(dir, 9), recSize+10) },
			tornWrites: 1, want: seqRange(1, 9), next: 10,
		},
		{
			name:      "torn record that was delivered",
			delivered: 10,
			damage:    func(t *testing.T, dir string) { truncateFile(t, segPath(dir, 9), recSize+30) },
			// A delivered record was fsynced: losing it is damage, not a kill.
			corruptions: 1, want: seqRange(1, 9), wantDelivered: 10, next: 11,
		},
		{
			name:   "torn record in an older segment",
			damage: func(t *testing.T, dir string) { truncateFile(t, segPath(dir, 5), recSize+30) },
			// Only the newest segment is ever written to.
			corruptions: 1, want: seqRange(1, 5), next: 6,
		},
		{
			name:      "checksum mismatch in a middle record",
			delivered: 3,
			damage: func(t *testing.T, dir string) {
				patchFile(t, segPath(dir, 5), recSize+headerSize+5, func(b []byte) { b[0] ^= 0x20 })
			},
			// Record 6 is bad: 5 stays, 6-8 and segment 9 go.
			corruptions: 1, want: seqRange(1, 5), wantDelivered: 3, next: 6,
		},
		{
			name: "garbage appended",
			damage: func(t *testing.T, dir string) {
				appendFile(t, segPath(dir, 9), []byte("\x00\x00\x00\x05 half a record and then some garbage"))
			},
			corruptions: 1, want: seqRange(1, 10), next: 11,
		},
		{
			name:        "zeroed tail",
			damage:      func(t *testing.T, dir string) { appendFile(t, segPath(dir, 9), make([]byte, 4096)) },
			corruptions: 1, want: seqRange(1, 10), next: 11,
		},
		{
			name: "absurd length",
			damage: func(t *testing.T, dir string) {
				patchFile(t, segPath(dir, 9), recSize, func(b []byte) { binary.BigEndian.PutUint32(b, 0xffffffff) })
			},
			corruptions: 1, want: seqRange(1, 9), next: 10,
		},
		{
			name: "sequence number out of order",
			damage: func(t *testing.T, dir string) {
				// A well-formed record with the wrong seq, as a stale file
				// might hold: only the CRC-valid seq check catches it.
				b := appendRecord(nil, 42, 0, payload(42))
				patchFile(t, segPath(dir, 9), recSize, func(dst []byte) { copy(dst, b) })
			},
			corruptions: 1, want: seqRange(1, 9), next: 10,
		},
		{
			name:        "watermark removed",
			delivered:   5,
			damage:      func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, watermarkFile)) },
			corruptions: 1, want: seqRange(1, 10), wantDelivered: 0, next: 11,
		},
		{
			name:      "watermark damaged",
			delivered: 5,
			damage: func(t *testing.T, dir string) {
				patchFile(t, filepath.Join(dir, watermarkFile), 7, func(b []byte) { b[0] ^= 1 })
			},
			corruptions: 1, want: seqRange(1, 10), wantDelivered: 0, next: 11,
		},
		{
			name:      "watermark ahead of a lost tail",
			delivered: 10,
			damage:    func(t *testing.T, dir string) { truncateFile(t, segPath(dir, 9), 30) },
			// 9 and 10 were delivered and are lost; their seqs are not reused.
			corruptions: 1, want: seqRange(1, 8), wantDelivered: 10, next: 11,
		},
		{
			name: "overlapping segment",
			damage: func(t *testing.T, dir string) {
				if err := os.Rename(segPath(dir, 9), segPath(dir, 7)); err != nil {
					t.Fatal(err)
				}
			},
			corruptions: 1, want: seqRange(1, 8), next: 9,
		},
		{
			name: "empty segment from an interrupted rotation",
			damage: func(t *testing.T, dir string) {
				if err := os.WriteFile(segPath(dir, 11), nil, 0o640); err != nil {
					t.Fatal(err)
				}
			},
			corruptions: 0, want: seqRange(1, 10), next: 11,
		},
		{
			name: "stale watermark temp file",
			damage: func(t *testing.T, dir string) {
				if err := os.WriteFile(filepath.Join(dir, watermarkTmp), []byte("x"), 0o640); err != nil {
					t.Fatal(err)
				}
			},
			corruptions: 0, want: seqRange(1, 10), next: 11,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{SegmentBytes: 4 * recSize}
			j, _ := open(t, dir, opts)
			appendSeqs(t, j, 1, 10)
			if tc.delivered > 0 {
				if err := j.MarkDelivered(tc.delivered); err != nil {
					t.Fatal(err)
				}
			}
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, dir)

			j, reg := open(t, dir, opts)
			if got := metricValue(t, reg, "prometheus_deephaven_bridge_journal_corruptions_total"); got != tc.corruptions {
				t.Errorf("corruptions = %v, want %v", got, tc.corruptions)
			}
			if got := metricValue(t, reg, "prometheus_deephaven_bridge_journal_torn_writes_cut_total"); got != tc.tornWrites {
				t.Errorf("torn writes cut = %v, want %v", got, tc.tornWrites)
			}
			if got := j.Delivered(); got != tc.wantDelivered {
				t.Errorf("Delivered = %d, want %d", got, tc.wantDelivered)
			}
			checkRecords(t, j, 0, tc.want...)
			appendSeqs(t, j, tc.next, tc.next+1)
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}

			// The repair is final: the next open finds nothing wrong.
			j, reg = open(t, dir, opts)
			if got := metricValue(t, reg, "prometheus_deephaven_bridge_journal_corruptions_total"); got != 0 {
				t.Errorf("corruptions after repair = %v, want 0", got)
			}
			checkRecords(t, j, 0, append(slices.Clone(tc.want), tc.next, tc.next+1)...)
			checkRecords(t, j, j.Delivered()+1, filterAbove(append(slices.Clone(tc.want), tc.next, tc.next+1), j.Delivered())...)
		})
	}
}

func filterAbove(seqs []uint64, min uint64) []uint64 {
	var out []uint64
	for _, s := range seqs {
		if s > min {
			out = append(out, s)
		}
	}
	return out
}

// A segment damaged after Open is reported by Replay, not silently skipped.
func TestReplayReportsLaterDamage(t *testing.T) {
	dir := t.TempDir()
	j, reg := open(t, dir, Options{SegmentBytes: 4 * recSize})
	appendSeqs(t, j, 1, 10)
	patchFile(t, segPath(dir, 5), headerSize, func(b []byte) { b[0] ^= 1 })
	err := j.Replay(0, func(uint64, time.Time, []byte) error { return nil })
	var cerr *CorruptionError
	if !errors.As(err, &cerr) || cerr.Segment != segmentName(5) || cerr.Offset != 0 || !errors.Is(err, errChecksum) {
		t.Fatalf("Replay = %v, want a checksum CorruptionError in segment 5 at offset 0", err)
	}
	if got := metricValue(t, reg, "prometheus_deephaven_bridge_journal_corruptions_total"); got != 1 {
		t.Errorf("corruptions = %v, want 1", got)
	}
}

// Files that are not segments are left alone.
func TestForeignFilesIgnored(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"README", "00000000000000000000.seg", "1.seg", "0000000000000000000x.seg"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("hello"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	j, reg := open(t, dir, Options{})
	appendSeqs(t, j, 1, 3)
	checkRecords(t, j, 0, 1, 2, 3)
	if got := metricValue(t, reg, "prometheus_deephaven_bridge_journal_corruptions_total"); got != 0 {
		t.Errorf("corruptions = %v", got)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "README")); err != nil || !bytes.Equal(b, []byte("hello")) {
		t.Errorf("README = %q, %v", b, err)
	}
}
