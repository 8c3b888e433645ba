// Package deephaven is a focused client for a Deephaven server's gRPC and
// Arrow Flight API: sessions, uploads, input tables, a few server-side table
// operations, publishing by name and reading back.
//
// It knows nothing about alerts or Prometheus. It speaks only to the typed
// table API: nothing in this package sends script code to the server, so no
// data a caller uploads can ever be executed there.
//
// # Sessions
//
// [Dial] opens one HTTP/2 connection and authenticates (anonymous or a
// pre-shared key). A background goroutine keeps the session alive by
// refreshing its token well before the server's session lifetime runs out,
// and, when the server restarts or the network drops, creates a new session
// with capped exponential backoff and jitter. [Client.State] reports the
// current state and the last error, for readiness checks.
//
// Server-side objects ("exports") belong to the session that made them. A
// [Table] remembers how it was made and is re-resolved in the new session the
// next time it is used, except tables uploaded from client memory, which
// return [ErrStale]. Tables reached by their published name ([Client.NamedTable],
// [InputTable] opened or created under a name) survive reconnects as long as
// the server still holds the name.
//
// # Concurrency
//
// All methods of [Client], [Table] and [InputTable] are safe for concurrent
// use. Every method that talks to the server takes a context and honours its
// deadline and cancellation. Server-side failures are returned as *[Error],
// which carries the gRPC code and the server's message.
package deephaven

//go:generate ../../scripts/gen-proto.sh
