package testenv

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestScrapeMetric(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `# TYPE requests_total counter
requests_total{code="200",path="/a"} 3
requests_total{code="200",path="/b"} 4
requests_total{code="503",path="/a"} 1
# TYPE undelivered gauge
undelivered 0
`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, c := range []struct {
		name  string
		lv    []string
		sum   float64
		found bool
	}{
		{"requests_total", nil, 8, true},
		{"requests_total", []string{"code", "200"}, 7, true},
		{"requests_total", []string{"code", "200", "path", "/a"}, 3, true},
		{"requests_total", []string{"code", "500"}, 0, false},
		{"undelivered", nil, 0, true},
		{"absent", nil, 0, false},
	} {
		sum, found, err := ScrapeMetric(srv.URL, c.name, c.lv...)
		if err != nil || sum != c.sum || found != c.found {
			t.Errorf("ScrapeMetric(%s, %v) = %v, %v, %v; want %v, %v", c.name, c.lv, sum, found, err, c.sum, c.found)
		}
	}
	if _, _, err := ScrapeMetric(srv.URL+"/nothing", "x"); err == nil {
		t.Error("no error for a page that is not there")
	}
}
