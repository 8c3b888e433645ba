package deephaven

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var (
	// ErrClosed is returned by every call after Close.
	ErrClosed = errors.New("deephaven: client closed")
	// ErrNotConnected is returned when no session is up (the client is
	// reconnecting); the error wraps the last connection error.
	ErrNotConnected = errors.New("deephaven: not connected")
	// ErrStale is returned when a table made from client memory is used
	// after its session ended: the server no longer has it and it cannot be
	// rebuilt.
	ErrStale = errors.New("deephaven: table belongs to an ended session")
)

// Error is a failure reported by the server (or by gRPC on the way to it).
// It keeps the operation that failed, the gRPC code and the server's message.
type Error struct {
	Op      string // what the client was doing, e.g. `add rows to "prometheus_alerts"`
	Code    codes.Code
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("deephaven: %s: %s", e.Op, e.Code)
	}
	return fmt.Sprintf("deephaven: %s: %s: %s", e.Op, e.Code, e.Message)
}

// GRPCStatus lets status.Code and status.FromError see the server's code.
func (e *Error) GRPCStatus() *status.Status { return status.New(e.Code, e.Message) }

// wrap turns a gRPC error into an *Error naming the operation. Context errors
// keep their identity so errors.Is(err, context.DeadlineExceeded) works.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var de *Error
	if errors.As(err, &de) {
		return err
	}
	if errors.Is(err, ErrClosed) || errors.Is(err, ErrNotConnected) || errors.Is(err, ErrStale) {
		return fmt.Errorf("deephaven: %s: %w", op, err)
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("deephaven: %s: %w", op, err)
	}
	return &Error{Op: op, Code: st.Code(), Message: st.Message()}
}

// Retryable reports whether err is a transient failure worth retrying:
// the server or network was unavailable, a deadline ran out on the way, the
// session ended (a new one is being made), or the client is reconnecting.
// Schema mismatches and other invalid requests are not retryable.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrNotConnected) || errors.Is(err, ErrStale) {
		return true
	}
	if errors.Is(err, ErrClosed) {
		return false
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Unauthenticated, codes.Aborted, codes.Canceled:
		return true
	}
	return false
}

func asError(err error, target **Error) bool { return errors.As(err, target) }
