package journal

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

const (
	// headerSize is the size of a record header: length, crc, seq, time.
	headerSize = 4 + 4 + 8 + 8
	// MaxRecordSize is the largest payload one record may carry. Open treats
	// a header announcing more as corruption, so a flipped high bit in a
	// length field cannot make it allocate gigabytes.
	MaxRecordSize = 64 << 20

	segmentSuffix = ".seg"
	segmentDigits = 20
	watermarkFile = "delivered"
	watermarkTmp  = watermarkFile + ".tmp"
	watermarkSize = 8 + 4
	idFile        = "id"
	idTmp         = idFile + ".tmp"
)

// castagnoli is computed once and only read afterwards.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Causes of a CorruptionError. More specific ones carry numbers and wrap
// nothing; these are the ones tests and callers may want to match.
var (
	// errIncomplete: the file ends inside a record. At the end of the
	// newest segment that is a write the process did not finish.
	errIncomplete  = errors.New("incomplete record")
	errShortHeader = fmt.Errorf("%w: header cut short", errIncomplete)
	errChecksum    = errors.New("checksum mismatch")
)

// CorruptionError reports damaged data in a journal file: a record that is
// cut short, fails its checksum, has an impossible length or an unexpected
// sequence number, or a damaged watermark file.
//
// Open repairs what it finds (and reports it in the log and in
// prometheus_deephaven_bridge_journal_corruptions_total); Replay returns a
// CorruptionError, wrapped, if a file changed on disk after Open read it.
type CorruptionError struct {
	Segment string // file name inside the journal directory
	Offset  int64  // byte offset of the first bad record
	Err     error  // what is wrong with it
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("journal: corrupt %s at offset %d: %v", e.Segment, e.Offset, e.Err)
}

// Unwrap returns the cause.
func (e *CorruptionError) Unwrap() error { return e.Err }

// segmentName is the file name of the segment whose first record has seq first.
// Zero-padding makes lexical and numeric order agree.
func segmentName(first uint64) string {
	return fmt.Sprintf("%0*d%s", segmentDigits, first, segmentSuffix)
}

// parseSegmentName is the inverse of segmentName. It rejects every other name,
// including seq 0, which is never assigned.
func parseSegmentName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(digits) != segmentDigits {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || n == 0 {
		return 0, false
	}
	return n, true
}

// appendRecord appends one encoded record to dst.
func appendRecord(dst []byte, seq uint64, unixNano int64, payload []byte) []byte {
	var h [headerSize]byte
	binary.BigEndian.PutUint32(h[0:], uint32(len(payload)))
	binary.BigEndian.PutUint64(h[8:], seq)
	binary.BigEndian.PutUint64(h[16:], uint64(unixNano))
	crc := crc32.Update(0, castagnoli, h[8:])
	crc = crc32.Update(crc, castagnoli, payload)
	binary.BigEndian.PutUint32(h[4:], crc)
	dst = append(dst, h[:]...)
	return append(dst, payload...)
}

// segmentReader decodes the records of one segment, checking each one.
type segmentReader struct {
	name string
	r    *bufio.Reader
	off  int64  // offset of the next record
	end  int64  // read no further than this
	want uint64 // the seq the next record must carry
	hdr  [headerSize]byte
	buf  []byte
}

func newSegmentReader(f *os.File, first uint64, end int64) *segmentReader {
	return &segmentReader{
		name: filepath.Base(f.Name()),
		r:    bufio.NewReaderSize(f, 64<<10),
		end:  end,
		want: first,
	}
}

// next returns the next record. It returns io.EOF at a clean end, a
// *CorruptionError at a bad record (and keeps returning it), or another error
// when the file could not be read. The payload is only valid until the next
// call.
func (r *segmentReader) next() (seq uint64, unixNano int64, payload []byte, err error) {
	left := r.end - r.off
	if left == 0 {
		return 0, 0, nil, io.EOF
	}
	if left < headerSize {
		return r.corrupt(errShortHeader)
	}
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		return r.readErr(err)
	}
	length := binary.BigEndian.Uint32(r.hdr[0:])
	if length > MaxRecordSize {
		return r.corrupt(fmt.Errorf("record length %d exceeds the limit of %d", length, MaxRecordSize))
	}
	if int64(length) > left-headerSize {
		return r.corrupt(fmt.Errorf("%w: length %d runs past the end of the segment (%d bytes left)", errIncomplete, length, left-headerSize))
	}
	if cap(r.buf) < int(length) {
		r.buf = make([]byte, length)
	}
	payload = r.buf[:length]
	if _, err := io.ReadFull(r.r, payload); err != nil {
		return r.readErr(err)
	}
	crc := crc32.Update(0, castagnoli, r.hdr[8:])
	crc = crc32.Update(crc, castagnoli, payload)
	if crc != binary.BigEndian.Uint32(r.hdr[4:]) {
		return r.corrupt(errChecksum)
	}
	// Checked after the CRC: a record with a valid checksum but the wrong seq
	// is intact data in the wrong place (a misnamed or stale file).
	seq = binary.BigEndian.Uint64(r.hdr[8:])
	if seq != r.want {
		return r.corrupt(fmt.Errorf("sequence number %d, want %d", seq, r.want))
	}
	r.off += headerSize + int64(length)
	r.want++
	return seq, int64(binary.BigEndian.Uint64(r.hdr[16:])), payload, nil
}

func (r *segmentReader) corrupt(err error) (uint64, int64, []byte, error) {
	// Stay at the bad record so repeated calls report the same thing.
	r.end = r.off
	return 0, 0, nil, &CorruptionError{Segment: r.name, Offset: r.off, Err: err}
}

// readErr classifies a failed read. The reader never reads past end, so
// running out of file means the file is shorter than it was a moment ago.
func (r *segmentReader) readErr(err error) (uint64, int64, []byte, error) {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return r.corrupt(fmt.Errorf("file ends early: %w", err))
	}
	return 0, 0, nil, fmt.Errorf("journal: read %s: %w", r.name, err)
}

// encodeWatermark encodes the delivery watermark: seq and its CRC-32C, big-endian.
func encodeWatermark(seq uint64) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, watermarkSize), seq)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeWatermark is the inverse of encodeWatermark.
func decodeWatermark(b []byte) (uint64, error) {
	if len(b) != watermarkSize {
		return 0, &CorruptionError{Segment: watermarkFile, Err: fmt.Errorf("size %d, want %d", len(b), watermarkSize)}
	}
	if crc32.Checksum(b[:8], castagnoli) != binary.BigEndian.Uint32(b[8:]) {
		return 0, &CorruptionError{Segment: watermarkFile, Err: errChecksum}
	}
	return binary.BigEndian.Uint64(b), nil
}

// syncDir makes file creations, renames and removals in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// loadID reads the journal's identity from its "id" file, making the file
// (temporary file, fsync, rename, directory sync) when it is missing or
// damaged. A new identity only costs a resend of the retained history.
func (j *Journal) loadID() (string, error) {
	dir := j.dir
	path := filepath.Join(dir, idFile)
	if b, err := os.ReadFile(path); err == nil {
		if id := strings.TrimSpace(string(b)); validID(id) {
			return id, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("journal: read id: %w", err)
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("journal: make id: %w", err)
	}
	id := hex.EncodeToString(raw[:])
	tmp := filepath.Join(dir, idTmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return "", fmt.Errorf("journal: write id: %w", err)
	}
	_, err = f.WriteString(id + "\n")
	if err == nil {
		err = j.fsync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = j.syncDir()
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("journal: write id: %w", err)
	}
	return id, nil
}

func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}
