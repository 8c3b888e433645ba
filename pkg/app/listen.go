package app

import (
	"context"
	"net"
	"strings"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
)

// waitListening returns once the first listen address accepts connections
// (or ctx ends).
func waitListening(ctx context.Context, w *web.FlagConfig) {
	if w == nil || w.WebListenAddresses == nil || len(*w.WebListenAddresses) == 0 {
		return
	}
	addr := (*w.WebListenAddresses)[0]
	if strings.HasPrefix(addr, ":") {
		addr = "127.0.0.1" + addr
	}
	for ctx.Err() == nil {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
