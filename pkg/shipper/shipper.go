// Package shipper is the alert path's delivery guarantee: an alert row is
// acknowledged once it is in the on-disk journal (fsynced), and the shipper
// then delivers journaled rows to Deephaven, in order, until they are there.
//
// The journal is also the alerts' durable history: when Deephaven comes back
// without the bridge's rows (a restart empties its in-memory tables), the
// whole retained history is sent again. The alerts table is key-backed, so a
// row sent twice replaces itself instead of adding a second one.
//
// # Invariant
//
// Every journal record at or below the journal's delivery watermark is in
// the alerts table of the Deephaven that holds this journal's checkpoint
// row (the bridge keeps one per journal and alerts table in Deephaven, see
// pkg/tables). Three rules keep it true across crashes of the
// bridge, of Deephaven, or of both, at any moment:
//
//  1. The watermark moves forward only after Deliver returned nil for every
//     record up to it, and only if no resend began in between (a delivery
//     that started before [Shipper.ResendHistory] does not move it).
//  2. Before a Deephaven without this journal's checkpoint gets any journaled
//     row, the watermark is moved back before the oldest retained record
//     and that is fsynced (ResendHistory); only then is the checkpoint
//     written into that Deephaven.
//  3. The resend is ordinary delivery from the watermark: it needs no memory
//     of having been started. A crash at any point resumes it from the
//     watermark, and a Deephaven that restarts again lacks the checkpoint
//     and gets a new resend.
//
// Deephaven holding the checkpoint but not everything below the watermark
// would take a change to its tables behind the bridge's back; emptiness of
// the table is not used as a signal, because a partial resend, or rows
// written by another bridge, make an incomplete table look complete.
//
// Records dropped by the journal's bounds (journal.max_bytes, max_age; only
// delivered records are ever dropped) cannot be resent: if Deephaven loses
// them afterwards, they are gone from it.
//
// Data flow: webhook → Write → journal (fsync) → 2xx … Run → Deliver → Deephaven.
package shipper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	json "github.com/goccy/go-json"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/journal"
	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/rows"
)

// Deliver writes rows to Deephaven and returns nil once they are there.
type Deliver func(ctx context.Context, rs []rows.AlertRow) error

// DeliverNotes writes notification rows to Deephaven and returns nil once
// they are there.
type DeliverNotes func(ctx context.Context, rs []rows.NotificationRow) error

// record is one journal record, JSON: an alert row's fields, or a
// notification (then Notification is set). Records written before
// notifications were journaled decode as alert rows, and notifications
// written before the alert row became a pointer (with an empty alert row's
// fields beside them) as notifications.
//
// The codec is github.com/goccy/go-json, which writes and reads the same
// JSON as encoding/json: a record's round trip costs 10 µs for an alert row
// and 3 µs for a notification, against 23 and 25 µs with encoding/json and
// the alert row embedded by value (BenchmarkRecordCodec). Those were half
// the bridge's CPU with the journal on.
type record struct {
	*rows.AlertRow
	// NonFiniteValue holds an AlertValue that JSON has no number for,
	// "NaN", "+Inf" or "-Inf" (a Grafana error ratio of 0/0, a rule's
	// value divided by zero); AlertValue is left out then. Without it such
	// an alert could not be journaled, and its whole request was refused.
	// A bridge from before the field reads such a record as valueless.
	NonFiniteValue string                `json:",omitempty"`
	Notification   *rows.NotificationRow `json:",omitempty"`
}

// encodeAlert returns the journal record of an alert row.
func encodeAlert(r *rows.AlertRow) ([]byte, error) {
	if v := r.AlertValue; v != nil && (math.IsNaN(*v) || math.IsInf(*v, 0)) {
		c := *r
		c.AlertValue = nil
		return json.Marshal(&record{AlertRow: &c, NonFiniteValue: strconv.FormatFloat(*v, 'g', -1, 64)})
	}
	return json.Marshal(r)
}

// decodeRecord reads a journal record written by encodeAlert or Notes.
func decodeRecord(data []byte) (record, error) {
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return r, err
	}
	if r.NonFiniteValue != "" && r.AlertRow != nil {
		v, err := strconv.ParseFloat(r.NonFiniteValue, 64)
		if err != nil || !(math.IsNaN(v) || math.IsInf(v, 0)) {
			return r, fmt.Errorf("NonFiniteValue %q is not NaN or an infinity", r.NonFiniteValue)
		}
		r.AlertValue = &v
	}
	return r, nil
}

// batch is what one delivery carries.
type batch struct {
	alerts []rows.AlertRow
	notes  []rows.NotificationRow
}

func (b *batch) len() int { return len(b.alerts) + len(b.notes) }

// Options tune a Shipper.
type Options struct {
	MaxRows    int           // most rows per delivery (default 10000)
	MinBackoff time.Duration // first retry delay (default 200ms)
	MaxBackoff time.Duration // retry delay cap (default 15s)
	// InFlight bounds the deliveries under way at once (default 1): the
	// next batch is read from the journal and sent while earlier ones are
	// still on their way. The watermark moves over a batch only once it
	// and every batch before it are delivered.
	InFlight int
}

// Shipper journals alert rows and delivers them.
//
// Write may be called concurrently; rows are journaled in the order
// their calls reach the journal. Run delivers in journal order, one batch at
// a time, and marks a batch delivered only after Deliver returned nil. A
// crash between delivery and marking re-sends the batch, which the key-backed
// table absorbs. Run returns when its context ends; call Flush afterwards to
// make a bounded last attempt.
type Shipper struct {
	j       *journal.Journal
	deliver Deliver
	direct  Deliver // used when the journal is full: synchronous delivery or 503
	// deliverNotes and directNotes do the same for notifications; nil
	// until SetNotifications.
	deliverNotes, directNotes DeliverNotes
	opts                      Options
	logger                    *slog.Logger

	wake chan struct{}

	// mu orders watermark moves: MarkDelivered after a delivery and the
	// rewind of ResendHistory. epoch counts resends; a delivery started in
	// an older epoch does not move the watermark.
	mu    sync.Mutex
	epoch uint64
	// landed holds the notifications known to be in Deephaven whose
	// records the watermark does not cover yet, each with the seq up to
	// which it may be redelivered: a failed batch holds the watermark back
	// over later batches that were delivered, and a process killed between
	// a delivery and its mark leaves the watermark behind. Redeliveries
	// skip them, since the notification log appends (a key-backed table
	// absorbs an alert row sent twice; the log would hold it twice).
	landed map[noteID]uint64
	// notesHeld reads the notification rows Deephaven holds received
	// since a time (SetNotesHeld); checked is set once a delivery round
	// asked it about the undelivered records: the first of the process,
	// and the first after each resend.
	notesHeld NotesHeld
	checked   bool

	delivered, failures, reloads prometheus.Counter
}

// NotesHeld returns the notification rows Deephaven holds that were
// received at or after since.
type NotesHeld func(ctx context.Context, since time.Time) ([]rows.NotificationRow, error)

// noteID identifies a notification row: a request logs an alert's
// notification once, at its own ReceivedAt.
type noteID struct {
	fingerprint, status, receiver string
	startsAt, receivedAt          int64
}

func idOf(r *rows.NotificationRow) noteID {
	return noteID{r.Fingerprint, r.Status, r.Receiver, r.StartsAt.UnixNano(), r.ReceivedAt.UnixNano()}
}

// receiveSlack bounds how long before its journal record a notification
// may have been received (its request's time in the bridge).
const receiveSlack = 10 * time.Minute

// New returns a Shipper over an open journal. direct is tried when the
// journal is full, so that a reachable Deephaven still takes alerts.
func New(j *journal.Journal, deliver, direct Deliver, opts Options, logger *slog.Logger, reg prometheus.Registerer) *Shipper {
	if opts.MaxRows <= 0 {
		opts.MaxRows = 10000
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 200 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 15 * time.Second
	}
	if opts.InFlight <= 0 {
		opts.InFlight = 1
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Shipper{
		j: j, deliver: deliver, direct: direct, opts: opts, logger: logger,
		wake: make(chan struct{}, 1), landed: map[noteID]uint64{},
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prometheus_deephaven_bridge_journal_rows_delivered_total",
			Help: "Journaled alert rows delivered to Deephaven (history reloads included).",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prometheus_deephaven_bridge_journal_delivery_failures_total",
			Help: "Failed deliveries of journaled alert rows to Deephaven (each try counts).",
		}),
		reloads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prometheus_deephaven_bridge_journal_history_reloads_total",
			Help: "Times the whole retained alert history was sent again because Deephaven came back without it.",
		}),
	}
	if reg != nil {
		reg.MustRegister(s.delivered, s.failures, s.reloads)
	}
	return s
}

// Write makes rows durable: it returns nil once they are fsynced in the
// journal (it is the alerts' sink.Writer when the journal is on). When the journal is full it falls back to delivering them
// directly, which fails (and the webhook answers 503) if Deephaven is
// unreachable too.
func (s *Shipper) Write(ctx context.Context, rs []rows.AlertRow) error {
	recs := make([][]byte, len(rs))
	for i := range rs {
		b, err := encodeAlert(&rs[i])
		if err != nil {
			return fmt.Errorf("shipper: encode alert row: %w", err)
		}
		recs[i] = b
	}
	_, err := s.j.Append(ctx, recs)
	return s.appended(ctx, err, len(rs), func(ctx context.Context) error { return s.direct(ctx, rs) })
}

// SetNotifications makes the shipper journal and deliver notification rows
// too (see Notes). Call it before Run.
func (s *Shipper) SetNotifications(deliver, direct DeliverNotes) {
	s.deliverNotes, s.directNotes = deliver, direct
}

// SetNotesHeld makes the first delivery after a start ask Deephaven which
// of the undelivered notifications it already holds, and skip those: the
// last process may have delivered them and died before marking them. Until
// the question is answered nothing is delivered. Call it before Run.
func (s *Shipper) SetNotesHeld(f NotesHeld) { s.notesHeld = f }

// Notes is the notification log's sink.Writer when the journal is on:
// Write returns once the rows are fsynced in the journal, like alert rows.
func (s *Shipper) Notes() NotesWriter { return NotesWriter{s} }

// NotesWriter journals notification rows; see Shipper.Notes.
type NotesWriter struct{ s *Shipper }

// Write journals notification rows.
func (w NotesWriter) Write(ctx context.Context, rs []rows.NotificationRow) error {
	s := w.s
	recs := make([][]byte, len(rs))
	for i := range rs {
		b, err := json.Marshal(&record{Notification: &rs[i]})
		if err != nil {
			return fmt.Errorf("shipper: encode notification row: %w", err)
		}
		recs[i] = b
	}
	_, err := s.j.Append(ctx, recs)
	return s.appended(ctx, err, len(rs), func(ctx context.Context) error { return s.directNotes(ctx, rs) })
}

// appended finishes a Write: on a full journal it delivers directly.
func (s *Shipper) appended(ctx context.Context, err error, n int, direct func(context.Context) error) error {
	switch {
	case err == nil:
		s.poke()
		return nil
	case errors.Is(err, journal.ErrFull):
		s.logger.Warn("Alert journal is full; writing to Deephaven directly", "rows", n)
		if derr := direct(ctx); derr != nil {
			return fmt.Errorf("shipper: journal full and Deephaven write failed: %w", derr)
		}
		return nil
	default:
		return fmt.Errorf("shipper: journal alerts: %w", err)
	}
}

// RecentNotes returns the notification rows journaled at or after since,
// delivered or not: what a restarted bridge's notification log recalls.
func (s *Shipper) RecentNotes(since time.Time) ([]rows.NotificationRow, error) {
	var out []rows.NotificationRow
	err := s.j.Replay(s.j.SeqSince(since), func(seq uint64, appended time.Time, data []byte) error {
		if appended.Before(since) {
			return nil
		}
		if r, err := decodeRecord(data); err == nil && r.Notification != nil {
			out = append(out, *r.Notification)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("shipper: read recent notifications: %w", err)
	}
	return out, nil
}

// Wake asks Run to deliver now (e.g. after a new Deephaven session).
func (s *Shipper) Wake() { s.poke() }

func (s *Shipper) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// ResendHistory makes the whole retained history undelivered again and
// wakes Run to send it, e.g. because Deephaven came back without the
// bridge's rows. The decision is durable before ResendHistory returns (the
// journal's watermark is moved back and fsynced), so a crash during the
// resend resumes it. A delivery in flight when it is called still reaches
// Deephaven but no longer moves the watermark.
func (s *Shipper) ResendHistory() error {
	s.mu.Lock()
	s.epoch++
	// Deephaven lost what landed. Deliveries under way may still land in
	// the new server (they were waiting for it) or may have landed in the
	// lost one: the next round, which starts once they all ended, asks
	// Deephaven again.
	clear(s.landed)
	s.checked = false
	st := s.j.Stats()
	to, err := s.j.Rewind()
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("shipper: resend history: %w", err)
	}
	s.reloads.Inc()
	if st.FirstSeq > 0 {
		s.logger.Info("Sending the retained alert history to Deephaven again", "records", st.LastSeq-to, "from_seq", to+1)
	}
	s.poke()
	return nil
}

// Pending returns how many journaled rows are not yet delivered.
func (s *Shipper) Pending() uint64 {
	st := s.j.Stats()
	if st.LastSeq <= st.Delivered {
		return 0
	}
	return st.LastSeq - st.Delivered
}

// OldestPending returns when the oldest undelivered record was journaled;
// false when everything is delivered. Retention waits for such records
// before it moves the live window past them.
func (s *Shipper) OldestPending() (time.Time, bool, error) {
	var at time.Time
	found := false
	err := s.j.Replay(s.j.Delivered()+1, func(_ uint64, appended time.Time, _ []byte) error {
		at, found = appended, true
		return errStopReplay
	})
	if err != nil && !errors.Is(err, errStopReplay) {
		return time.Time{}, false, fmt.Errorf("shipper: read the oldest undelivered record: %w", err)
	}
	return at, found, nil
}

var errStopReplay = errors.New("stop")

// Run delivers journaled rows until ctx ends. Deliveries under way then
// finish (bounded by drain) and move the watermark: one cut short could
// still land, and Flush would send its notifications again.
func (s *Shipper) Run(ctx, drain context.Context) {
	var backoff time.Duration
	var lastErr string
	s.poke() // rows left from before a restart go first
	for {
		var retry <-chan time.Time
		var timer *time.Timer
		if backoff > 0 {
			timer = time.NewTimer(backoff)
			retry = timer.C
		}
		select {
		case <-ctx.Done():
		case <-s.wake:
		case <-retry:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return
		}
		err := s.deliverAll(ctx, drain)
		if err == nil {
			if lastErr != "" {
				s.logger.Info("Delivering journaled alerts works again")
			}
			backoff, lastErr = 0, ""
			continue
		}
		if ctx.Err() != nil {
			return
		}
		s.failures.Inc()
		if msg := err.Error(); msg != lastErr {
			s.logger.Warn("Delivering journaled alerts failed; retrying", "pending", s.Pending(), "err", err)
			lastErr = msg
		}
		backoff = min(max(backoff*2, s.opts.MinBackoff), s.opts.MaxBackoff)
		backoff = backoff/2 + time.Duration(rand.Int64N(int64(backoff/2)+1))
	}
}

// Flush makes a last delivery attempt, bounded by ctx (at shutdown).
func (s *Shipper) Flush(ctx context.Context) error {
	if s.Pending() == 0 {
		return nil
	}
	return s.deliverAll(ctx, ctx)
}

// deliverAll sends batches from the watermark on, up to Options.InFlight
// at once, until nothing is pending, a delivery failed or ctx ended; the
// deliveries themselves run under work. The watermark moves over the
// batches delivered so far in journal order, unless a resend began
// meanwhile.
func (s *Shipper) deliverAll(ctx, work context.Context) error {
	for {
		moved, err := s.deliverRound(ctx, work)
		if err != nil {
			return err
		}
		// A round stops sending once ctx ends; without this check,
		// records still pending would make this loop spin forever (a
		// bridge that never exited after SIGTERM).
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("delivering journaled alerts: %w", err)
		}
		if !moved && s.Pending() == 0 {
			return nil
		}
	}
}

// errBatchFull stops a replay once a batch is full.
var errBatchFull = errors.New("batch full")

// shipment is one batch on its way.
type shipment struct {
	last  uint64                 // seq of its last record
	rows  int                    // rows in it
	notes []rows.NotificationRow // its notifications
	done  chan error             // receives the delivery's outcome
}

// deliverRound reads batches from the watermark on and delivers them, up to
// Options.InFlight at once, until the journal has no more or a delivery
// failed; then it waits for those under way and marks the delivered prefix.
// It reports whether there was anything to send.
func (s *Shipper) deliverRound(ctx, work context.Context) (bool, error) {
	if err := s.checkLanded(ctx); err != nil {
		return false, err
	}
	s.mu.Lock()
	epoch := s.epoch
	from := s.j.Delivered() + 1
	s.mu.Unlock()

	var queue []*shipment // in journal order
	var firstErr error
	moved := false
	// settle takes the outcome of the oldest shipment, waiting for it when
	// block is set, then of every next one already done, and marks the
	// delivered prefix.
	settle := func(block bool) {
		for len(queue) > 0 {
			var err error
			if block {
				err = <-queue[0].done
				block = false
			} else {
				select {
				case err = <-queue[0].done:
				default:
					return
				}
			}
			sh := queue[0]
			queue = queue[1:]
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			s.delivered.Add(float64(sh.rows))
			marked := false
			if firstErr == nil {
				if err := s.mark(epoch, sh.last); err != nil {
					firstErr = err
				} else {
					marked = true
				}
			}
			if !marked {
				// Delivered, but the watermark stays before it: the
				// next round sends it again.
				s.landedBeyondMark(epoch, sh)
			}
		}
	}
	for firstErr == nil && ctx.Err() == nil {
		if len(queue) >= s.opts.InFlight {
			if settle(true); firstErr != nil {
				break
			}
		}
		batch, last, err := s.read(from)
		if err != nil {
			firstErr = err
			break
		}
		if last == 0 {
			break
		}
		moved = true
		from = last + 1
		sh := &shipment{last: last, rows: batch.len(), notes: batch.notes, done: make(chan error, 1)}
		queue = append(queue, sh)
		if batch.len() == 0 {
			sh.done <- nil // nothing decodable in it: only the watermark moves
		} else {
			go func() { sh.done <- s.deliverBatch(work, batch) }()
		}
		settle(false)
	}
	// Deliveries under way finish (or fail) before the round ends: the
	// watermark only ever covers a delivered prefix.
	for len(queue) > 0 {
		settle(true)
	}
	return moved, firstErr
}

// mark moves the watermark to last, unless a resend began since epoch: a
// batch that was on its way then may have landed in a Deephaven that lost
// everything before it, so the watermark stays where the resend put it.
func (s *Shipper) mark(epoch, last uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch != epoch {
		return nil
	}
	if err := s.j.MarkDelivered(last); err != nil {
		return fmt.Errorf("shipper: mark delivered: %w", err)
	}
	for id, upTo := range s.landed {
		if upTo <= last {
			delete(s.landed, id)
		}
	}
	return nil
}

// landedBeyondMark remembers the notifications of a delivered shipment the
// watermark does not cover, unless a resend began since epoch (the next
// round asks Deephaven then).
func (s *Shipper) landedBeyondMark(epoch uint64, sh *shipment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch != epoch {
		return
	}
	for i := range sh.notes {
		s.landed[idOf(&sh.notes[i])] = sh.last
	}
}

// checkLanded asks Deephaven which undelivered notifications it holds (see
// SetNotesHeld), before the first delivery of the process and of each
// resend. A round runs alone and ends only once its deliveries did, so none
// of this process can land after the answer.
func (s *Shipper) checkLanded(ctx context.Context) error {
	s.mu.Lock()
	done := s.checked || s.notesHeld == nil
	epoch := s.epoch
	s.mu.Unlock()
	if done {
		return nil
	}
	upTo := s.j.Stats().LastSeq
	oldest, pending, err := s.OldestPending()
	if err != nil {
		return err
	}
	var held []rows.NotificationRow
	if pending {
		if held, err = s.notesHeld(ctx, oldest.Add(-receiveSlack)); err != nil {
			return fmt.Errorf("shipper: read which undelivered notifications Deephaven holds: %w", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch == epoch { // else Deephaven lost them since: ask again
		for i := range held {
			s.landed[idOf(&held[i])] = upTo
		}
		s.checked = true
	}
	return nil
}

// deliverBatch delivers the alert rows and the notifications of a batch.
func (s *Shipper) deliverBatch(ctx context.Context, b batch) error {
	if len(b.alerts) > 0 {
		if err := s.deliver(ctx, b.alerts); err != nil {
			return err
		}
	}
	if len(b.notes) > 0 && s.deliverNotes != nil {
		return s.deliverNotes(ctx, b.notes)
	}
	return nil
}

// read returns the next batch of records from seq from on and the seq of
// its last record (0 when there is none).
func (s *Shipper) read(from uint64) (batch, uint64, error) {
	var b batch
	var last uint64
	var landed map[noteID]uint64
	s.mu.Lock()
	if len(s.landed) > 0 {
		landed = maps.Clone(s.landed)
	}
	s.mu.Unlock()
	err := s.j.Replay(from, func(seq uint64, _ time.Time, data []byte) error {
		r, err := decodeRecord(data)
		if err != nil || (r.Notification == nil && r.AlertRow == nil) {
			// A record that passed its checksum but does not decode was
			// written by another version; skip it rather than block.
			s.logger.Error("Skipping an undecodable journal record", "seq", seq, "err", err)
		} else if r.Notification != nil {
			if _, ok := landed[idOf(r.Notification)]; !ok {
				b.notes = append(b.notes, *r.Notification)
			}
		} else {
			b.alerts = append(b.alerts, *r.AlertRow)
		}
		last = seq
		if b.len() >= s.opts.MaxRows {
			return errBatchFull
		}
		return nil
	})
	if err != nil && !errors.Is(err, errBatchFull) {
		return batch{}, 0, fmt.Errorf("shipper: read journal: %w", err)
	}
	return b, last, nil
}
