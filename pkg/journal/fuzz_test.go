package journal

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"os"
	"slices"
	"testing"
	"time"
)

// refRecord is a record as the reference decoder below sees it.
type refRecord struct {
	seq     uint64
	t       int64
	payload []byte
}

// validPrefix decodes the records at the start of a segment named 1 that a
// reader must accept, written independently of segmentReader from the
// format description.
func validPrefix(data []byte) []refRecord {
	table := crc32.MakeTable(crc32.Castagnoli)
	var recs []refRecord
	for off, seq := 0, uint64(1); len(data)-off >= headerSize; seq++ {
		h := data[off : off+headerSize]
		n := binary.BigEndian.Uint32(h)
		if n > MaxRecordSize || int64(n) > int64(len(data)-off-headerSize) {
			break
		}
		end := off + headerSize + int(n)
		if crc32.Checksum(data[off+8:end], table) != binary.BigEndian.Uint32(h[4:]) {
			break
		}
		if binary.BigEndian.Uint64(h[8:]) != seq {
			break
		}
		recs = append(recs, refRecord{seq, int64(binary.BigEndian.Uint64(h[16:])), data[off+headerSize : end]})
		off = end
	}
	return recs
}

func fuzzSeeds() [][]byte {
	var valid []byte
	for seq := uint64(1); seq <= 5; seq++ {
		valid = appendRecord(valid, seq, int64(seq)*1e9, bytes.Repeat([]byte{byte('a' + seq)}, int(seq*7)))
	}
	flipped := slices.Clone(valid)
	flipped[2*headerSize+7+3] ^= 0x10 // payload of record 2
	hugeLen := slices.Clone(valid)
	binary.BigEndian.PutUint32(hugeLen[headerSize+7:], 0xffffffff) // length of record 2
	return [][]byte{
		valid,
		valid[:len(valid)-9],                 // torn payload
		valid[:len(valid)-5*7-headerSize+10], // torn header
		flipped,                              // checksum mismatch
		hugeLen,                              // absurd length
		append(slices.Clone(valid), "garbage"...),         // trailing garbage
		append(slices.Clone(valid), make([]byte, 100)...), // zeroed tail
		appendRecord(nil, 2, 0, []byte("wrong first seq")),
		append(appendRecord(nil, 1, 0, nil), appendRecord(nil, 3, 0, []byte("gap"))...),
		{},
		make([]byte, headerSize),
	}
}

// FuzzJournalReader writes arbitrary bytes as the only segment and checks
// that Open repairs rather than fails, that Replay yields exactly the valid
// prefix (CRC-checked, seqs consecutive from 1) and that appends continue
// right after it.
func FuzzJournalReader(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(segPath(dir, 1), data, 0o640); err != nil {
			t.Fatal(err)
		}
		// No fsyncs: this is about parsing and repair, and it must run fast.
		j, err := Open(dir, Options{SegmentBytes: 1 << 10, noSync: true}, nil, nil)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer j.Close()

		want := validPrefix(data)
		var i int
		err = j.Replay(0, func(seq uint64, at time.Time, rec []byte) error {
			if i >= len(want) {
				t.Fatalf("record %d beyond the %d valid ones", seq, len(want))
			}
			w := want[i]
			if seq != w.seq || at.UnixNano() != w.t || !bytes.Equal(rec, w.payload) {
				t.Fatalf("record %d = (%d, %d, %q), want (%d, %d, %q)", i, seq, at.UnixNano(), rec, w.seq, w.t, w.payload)
			}
			i++
			return nil
		})
		if err != nil {
			t.Fatalf("Replay: %v", err)
		}
		if i != len(want) {
			t.Fatalf("replayed %d records, want %d", i, len(want))
		}
		last, err := j.Append(context.Background(), [][]byte{[]byte("next")})
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		if last != uint64(len(want))+1 {
			t.Fatalf("Append got seq %d, want %d", last, len(want)+1)
		}
	})
}
