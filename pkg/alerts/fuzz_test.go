package alerts

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzDecode checks that Decode never panics, returns only *Error, and that
// whatever it accepts maps to rows the tables can hold.
func FuzzDecode(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		if len(b) < 64<<10 { // the big ones only slow the fuzzer down
			f.Add(b)
		}
	}
	received := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := Decode(body, Options{MaxAlertsPerRequest: 50, MaxLabelsPerAlert: 50})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is %T, want *Error", err, err)
			}
			return
		}
		for i, r := range m.Rows(context.Background(), received, Options{}) {
			if r.Status != StatusFiring && r.Status != StatusResolved {
				t.Fatalf("row %d: status %q", i, r.Status)
			}
			if r.Fingerprint == "" {
				t.Fatalf("row %d: empty fingerprint", i)
			}
			for _, tm := range []time.Time{r.PrometheusDateTime, r.StartsAt} {
				if tm.Before(minTime) || tm.After(maxTime) || tm.Location() != time.UTC {
					t.Fatalf("row %d: time %v out of range or not UTC", i, tm)
				}
			}
			if r.Status == StatusFiring && !r.EndsAt.IsZero() {
				t.Fatalf("row %d: firing with EndsAt %v", i, r.EndsAt)
			}
			if r.Status == StatusResolved && !r.PrometheusDateTime.Equal(r.EndsAt) {
				t.Fatalf("row %d: resolved at %v, ends %v", i, r.PrometheusDateTime, r.EndsAt)
			}
			if r.Labels == "" || r.Labels[0] != '{' || r.Annotations == "" {
				t.Fatalf("row %d: labels %q annotations %q", i, r.Labels, r.Annotations)
			}
		}
	})
}
