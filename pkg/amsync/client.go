package amsync

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Alert is an alert as Alertmanager's GET /api/v2/alerts returns it
// (models.GettableAlert, with the fields the bridge reads).
type Alert struct {
	Fingerprint  string            `json:"fingerprint"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	UpdatedAt    time.Time         `json:"updatedAt"`
	GeneratorURL string            `json:"generatorURL"`
	Receivers    []struct {
		Name string `json:"name"`
	} `json:"receivers"`
	Status struct {
		State       string   `json:"state"` // unprocessed, active or suppressed
		SilencedBy  []string `json:"silencedBy"`
		InhibitedBy []string `json:"inhibitedBy"`
	} `json:"status"`
}

// maxResponse bounds a response body: a real Alertmanager with 100,000
// alerts answers with about 100 MB.
const maxResponse = 256 << 20

// fetch reads every alert one Alertmanager holds: active, silenced,
// inhibited and unprocessed. A hand-written client: the response is one
// flat JSON list, and Alertmanager's generated client would add about
// 4 MiB and thirty modules to the binary for it.
func fetch(ctx context.Context, hc *http.Client, base string) ([]Alert, error) {
	q := url.Values{}
	for _, k := range []string{"active", "silenced", "inhibited", "unprocessed"} {
		q.Set(k, "true")
	}
	u := strings.TrimSuffix(base, "/") + "/api/v2/alerts?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("alertmanager %s: %w", base, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("alertmanager %s: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("alertmanager %s: GET /api/v2/alerts answered %s: %s", base, resp.Status, strings.TrimSpace(string(msg)))
	}
	var alerts []Alert
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(&alerts); err != nil {
		return nil, fmt.Errorf("alertmanager %s: decode /api/v2/alerts: %w", base, err)
	}
	return alerts, nil
}
