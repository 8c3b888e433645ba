package deephaven

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven/internal/backplane"
	consolepb "github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven/internal/console"
)

// Client is a connection to one Deephaven server with one live session at a
// time. Make it with Dial; Close it when done.
type Client struct {
	addr   string
	auth   Auth
	logger *slog.Logger
	mem    memory.Allocator
	opts   options

	conn    *grpc.ClientConn
	config  pb.ConfigServiceClient
	session pb.SessionServiceClient
	tables  pb.TableServiceClient
	inputs  pb.InputTableServiceClient
	apps    pb.ApplicationServiceClient
	console consolepb.ConsoleServiceClient
	flight  flight.FlightServiceClient

	cur     atomic.Pointer[session] // nil while no session is up
	mu      sync.Mutex              // guards state, lastErr, listeners
	state   State
	lastErr error
	hooks   []func(ctx context.Context)

	kick     chan struct{} // asks the supervisor to check the session now
	done     chan struct{}
	closing  sync.Once
	wg       sync.WaitGroup
	releases chan releaseJob
	// bodies holds the buffers Flight messages are serialized into, reused
	// across uploads: a fresh one per upload grew by doubling to each
	// message's size, ~10 % of the metrics path's CPU. A channel rather
	// than a sync.Pool, which every GC empties: under load that is often.
	bodies chan *bytes.Buffer
}

// keptBodies is how many message buffers are kept between uploads. It
// bounds what they hold (keptBodies × maxKeptBody at most); uploads in
// flight beyond it, across all tables, serialize into buffers of their own.
const keptBodies = 4

// maxKeptBody is the largest message buffer kept for reuse: a message of
// putChunkRows metric rows (~6 MB) fits; a rare bigger one is not kept.
const maxKeptBody = 16 << 20

// body returns a buffer for serializing Flight messages into.
func (c *Client) body() *bytes.Buffer {
	select {
	case b := <-c.bodies:
		return b
	default:
		return new(bytes.Buffer)
	}
}

// keepBody returns b for reuse, unless enough are kept or it is too big.
func (c *Client) keepBody(b *bytes.Buffer) {
	if b.Cap() > maxKeptBody {
		return
	}
	b.Reset()
	select {
	case c.bodies <- b:
	default:
	}
}

// session is one authenticated Deephaven session. Export ids are per session.
type session struct {
	gen      uint64
	token    atomic.Value // string: "Bearer <uuid>"
	lifetime time.Duration
	nextID   atomic.Int32
	dead     atomic.Bool
}

func (s *session) newTicket() []byte {
	id := s.nextID.Add(1)
	return exportTicket(id)
}

// State is the connection state of a Client.
type State int

// The states a Client goes through.
const (
	Connecting State = iota
	Connected
	Reconnecting
	Closed
)

func (s State) String() string {
	switch s {
	case Connecting:
		return "connecting"
	case Connected:
		return "connected"
	case Reconnecting:
		return "reconnecting"
	case Closed:
		return "closed"
	}
	return "unknown(" + strconv.Itoa(int(s)) + ")"
}

// Status is a snapshot of the client's connection state.
type Status struct {
	State     State
	LastError error  // the last connection error, nil when connected
	Session   uint64 // how many sessions this client has made; changes on reconnect
}

// Option configures Dial.
type Option func(*options)

type options struct {
	tls        *tls.Config
	logger     *slog.Logger
	auth       Auth
	minBackoff time.Duration
	maxBackoff time.Duration
	keepAlive  time.Duration // 0: a third of the server's session lifetime
	mem        memory.Allocator
	dialOpts   []grpc.DialOption
}

// WithTLS connects over TLS with the given configuration (nil config: system roots).
func WithTLS(cfg *tls.Config) Option {
	return func(o *options) {
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		o.tls = cfg
	}
}

// WithAuth sets how sessions authenticate (default Anonymous).
func WithAuth(a Auth) Option { return func(o *options) { o.auth = a } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithBackoff sets the reconnect backoff bounds (default 100ms to 30s).
func WithBackoff(min, max time.Duration) Option {
	return func(o *options) { o.minBackoff, o.maxBackoff = min, max }
}

// WithKeepAlive sets how often the session token is refreshed (default: a
// third of the server's session lifetime).
func WithKeepAlive(d time.Duration) Option { return func(o *options) { o.keepAlive = d } }

// WithAllocator sets the Arrow memory allocator used for reading results.
func WithAllocator(m memory.Allocator) Option { return func(o *options) { o.mem = m } }

// WithDialOptions adds gRPC dial options.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dialOpts = append(o.dialOpts, opts...) }
}

// Dial connects to the Deephaven server at addr (host:port) and starts a
// session. It returns once the first session is up, or with an error if it
// could not be made before ctx ended; later failures are repaired in the
// background.
func Dial(ctx context.Context, addr string, opts ...Option) (c *Client, err error) {
	o := options{auth: Anonymous(), minBackoff: 100 * time.Millisecond, maxBackoff: 30 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if o.mem == nil {
		o.mem = memory.DefaultAllocator
	}
	creds := insecure.NewCredentials()
	if o.tls != nil {
		creds = credentials.NewTLS(o.tls)
	}
	c = &Client{
		addr:     addr,
		auth:     o.auth,
		logger:   o.logger.With("deephaven", addr),
		mem:      o.mem,
		opts:     o,
		kick:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		releases: make(chan releaseJob, 1024),
		bodies:   make(chan *bytes.Buffer, keptBodies),
	}
	dialOpts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithUnaryInterceptor(c.unaryInterceptor),
		grpc.WithStreamInterceptor(c.streamInterceptor),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1 << 30)),
		// Large uploads are single Flight messages; bigger windows keep
		// them from waiting on flow-control round trips.
		grpc.WithInitialWindowSize(8 << 20),
		grpc.WithInitialConnWindowSize(16 << 20),
	}, o.dialOpts...)
	conn, err := grpc.NewClient(addr, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("deephaven: connect to %s: %w", addr, err)
	}
	c.conn = conn
	c.config = pb.NewConfigServiceClient(conn)
	c.session = pb.NewSessionServiceClient(conn)
	c.tables = pb.NewTableServiceClient(conn)
	c.inputs = pb.NewInputTableServiceClient(conn)
	c.apps = pb.NewApplicationServiceClient(conn)
	c.console = consolepb.NewConsoleServiceClient(conn)
	c.flight = flight.NewFlightServiceClient(conn)

	s, err := c.newSession(ctx)
	if err != nil {
		conn.Close()
		return nil, err
	}
	c.cur.Store(s)
	c.setState(Connected, nil)
	c.wg.Add(2)
	go c.supervise()
	go c.releaser()
	return c, nil
}

// Close ends the session and the connection. It waits for background work
// (pending releases, the keep-alive loop) to stop. Close is idempotent.
func (c *Client) Close() error {
	var err error
	c.closing.Do(func() {
		close(c.done)
		c.wg.Wait()
		if s := c.cur.Swap(nil); s != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err = c.session.CloseSession(withSession(ctx, s), &pb.HandshakeRequest{AuthProtocol: 0, Payload: []byte(s.token.Load().(string))})
			cancel()
			err = wrap("close session", err)
		}
		c.setState(Closed, nil)
		if cerr := c.conn.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("deephaven: close connection: %w", cerr)
		}
	})
	return err
}

// Status returns the connection state, the last error and the session count.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Status{State: c.state, LastError: c.lastErr}
	if s := c.cur.Load(); s != nil {
		st.Session = s.gen
	}
	return st
}

// OnNewSession registers f to run (in the supervisor goroutine, before the
// client reports Connected again) each time a replacement session is made
// after the first. Use it to re-create server-side state that did not
// survive, e.g. after a server restart. f should honour ctx and return
// promptly.
func (c *Client) OnNewSession(f func(ctx context.Context)) {
	c.mu.Lock()
	c.hooks = append(c.hooks, f)
	c.mu.Unlock()
}

func (c *Client) setState(s State, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == Closed {
		return
	}
	if c.state != s {
		c.logger.Info("Deephaven session state changed", "from", c.state, "to", s, "err", err)
	}
	c.state, c.lastErr = s, err
}

// active returns the current session or ErrNotConnected/ErrClosed.
func (c *Client) active() (*session, error) {
	select {
	case <-c.done:
		return nil, ErrClosed
	default:
	}
	s := c.cur.Load()
	if s == nil || s.dead.Load() {
		c.mu.Lock()
		last := c.lastErr
		c.mu.Unlock()
		if last != nil {
			return nil, fmt.Errorf("%w: %v", ErrNotConnected, last)
		}
		return nil, ErrNotConnected
	}
	return s, nil
}

// newSession authenticates with the initial credential and returns a session
// holding the bearer token the server hands back.
func (c *Client) newSession(ctx context.Context) (*session, error) {
	var hdr, trl metadata.MD
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", c.auth.header)
	resp, err := c.config.GetConfigurationConstants(ctx, &pb.ConfigurationConstantsRequest{}, grpc.Header(&hdr), grpc.Trailer(&trl))
	if err != nil {
		return nil, wrap("start session ("+c.auth.String()+" auth)", err)
	}
	tok := bearer(hdr)
	if tok == "" {
		tok = bearer(trl)
	}
	if tok == "" {
		return nil, &Error{Op: "start session", Code: codes.Internal, Message: "server sent no session token"}
	}
	s := &session{lifetime: 5 * time.Minute}
	if v, ok := resp.GetConfigValues()["http.session.durationMs"]; ok {
		if ms, err := strconv.ParseInt(v.GetStringValue(), 10, 64); err == nil && ms > 0 {
			s.lifetime = time.Duration(ms) * time.Millisecond
		}
	}
	s.token.Store(tok)
	if old := c.cur.Load(); old != nil {
		s.gen = old.gen + 1
	} else {
		s.gen = 1
	}
	return s, nil
}

func bearer(md metadata.MD) string {
	for _, v := range md.Get("authorization") {
		if len(v) > 7 && v[:7] == "Bearer " {
			return v
		}
	}
	return ""
}

// sessionKey carries the session a call belongs to. Every call names its
// session explicitly, so an export id made in one session is never sent
// with another session's token (the server ends a session that references
// an export it never made).
type sessionKey struct{}

func withSession(ctx context.Context, s *session) context.Context {
	return context.WithValue(ctx, sessionKey{}, s)
}

func (c *Client) unaryInterceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	s, _ := ctx.Value(sessionKey{}).(*session)
	if s == nil {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	var hdr metadata.MD
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", s.token.Load().(string))
	err := invoker(ctx, method, req, reply, cc, append(opts, grpc.Header(&hdr))...)
	// The server rotates tokens on authenticated calls; always adopt the newest.
	if tok := bearer(hdr); tok != "" {
		s.token.Store(tok)
	}
	c.observe(s, err)
	return err
}

func (c *Client) streamInterceptor(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, _ := ctx.Value(sessionKey{}).(*session)
	if s == nil {
		return streamer(ctx, desc, cc, method, opts...)
	}
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", s.token.Load().(string))
	cs, err := streamer(ctx, desc, cc, method, opts...)
	c.observe(s, err)
	return cs, err
}

// observe reacts to errors that say the session or the server is gone.
func (c *Client) observe(s *session, err error) {
	switch status.Code(err) {
	case codes.Unauthenticated:
		if s.dead.CompareAndSwap(false, true) {
			c.logger.Warn("Deephaven session ended; starting a new one", "session", s.gen)
			c.poke()
		}
	case codes.Unavailable:
		c.poke()
	}
}

func (c *Client) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// supervise keeps the session alive: it refreshes the token on a timer and,
// when a call or a refresh fails, repairs the connection with capped
// exponential backoff and jitter until it works again or the client closes.
func (c *Client) supervise() {
	defer c.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-c.done; cancel() }()
	backoff := time.Duration(0)
	for {
		s := c.cur.Load()
		wait := c.opts.keepAlive
		if wait <= 0 && s != nil {
			wait = s.lifetime / 3
		}
		if wait <= 0 {
			wait = time.Minute
		}
		if backoff > 0 {
			wait = backoff
		}
		t := time.NewTimer(wait)
		select {
		case <-c.done:
			t.Stop()
			return
		case <-c.kick:
			t.Stop()
		case <-t.C:
		}
		err := c.check(ctx)
		if err == nil {
			backoff = 0
			continue
		}
		if ctx.Err() != nil {
			return
		}
		c.setState(Reconnecting, err)
		backoff = nextBackoff(backoff, c.opts.minBackoff, c.opts.maxBackoff)
		c.logger.Debug("Deephaven session check failed", "err", err, "retry_in", backoff)
	}
}

// check refreshes the current session, or makes a new one when the server no
// longer knows it.
func (c *Client) check(base context.Context) error {
	ctx, cancel := context.WithTimeout(base, 10*time.Second)
	defer cancel()
	s := c.cur.Load()
	if s != nil && !s.dead.Load() {
		_, err := c.config.GetConfigurationConstants(withSession(ctx, s), &pb.ConfigurationConstantsRequest{})
		if err == nil {
			c.setState(Connected, nil)
			return nil
		}
		if status.Code(err) != codes.Unauthenticated {
			return wrap("refresh session", err)
		}
		s.dead.Store(true)
	}
	ns, err := c.newSession(ctx)
	if err != nil {
		return err
	}
	c.cur.Store(ns)
	c.mu.Lock()
	hooks := append([]func(context.Context){}, c.hooks...)
	c.mu.Unlock()
	c.logger.Info("Deephaven session started", "session", ns.gen)
	// Hooks re-create server state and may take a while on a server that
	// just started; they get their own deadline, not the ping's.
	hctx, hcancel := context.WithTimeout(base, 2*time.Minute)
	defer hcancel()
	for _, h := range hooks {
		h(hctx)
	}
	c.setState(Connected, nil)
	return nil
}

// nextBackoff doubles the previous wait within [min, max] and adds up to 50%
// jitter downwards, so many clients do not retry in step.
func nextBackoff(prev, min, max time.Duration) time.Duration {
	d := prev * 2
	if d < min {
		d = min
	}
	if d > max {
		d = max
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// Ping makes one authenticated round trip and reports whether the session is
// usable.
func (c *Client) Ping(ctx context.Context) error {
	s, err := c.active()
	if err != nil {
		return wrap("ping", err)
	}
	_, err = c.config.GetConfigurationConstants(withSession(ctx, s), &pb.ConfigurationConstantsRequest{})
	return wrap("ping", err)
}

// ServerConfig returns the server's configuration constants (e.g.
// deephaven.version, http.session.durationMs).
func (c *Client) ServerConfig(ctx context.Context) (map[string]string, error) {
	s, err := c.active()
	if err != nil {
		return nil, wrap("get configuration", err)
	}
	resp, err := c.config.GetConfigurationConstants(withSession(ctx, s), &pb.ConfigurationConstantsRequest{})
	if err != nil {
		return nil, wrap("get configuration", err)
	}
	out := make(map[string]string, len(resp.GetConfigValues()))
	for k, v := range resp.GetConfigValues() {
		out[k] = v.GetStringValue()
	}
	return out, nil
}

// releaseJob is an export to release in the background.
type releaseJob struct {
	s      *session
	ticket []byte
	done   chan struct{} // optional; closed when released
}

// releaser releases exports off the callers' path: a release costs a round
// trip that an append need not wait for. Pending releases are finished
// before Close returns.
func (c *Client) releaser() {
	defer c.wg.Done()
	for {
		select {
		case j := <-c.releases:
			c.releaseNow(j)
		case <-c.done:
			for {
				select {
				case j := <-c.releases:
					c.releaseNow(j)
				default:
					return
				}
			}
		}
	}
}

func (c *Client) releaseNow(j releaseJob) {
	if j.done != nil {
		defer close(j.done)
	}
	if j.ticket == nil || j.s.dead.Load() || c.cur.Load() != j.s {
		return // the session and all its exports are gone already
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.session.Release(withSession(ctx, j.s), &pb.ReleaseRequest{Id: &pb.Ticket{Ticket: j.ticket}}); err != nil {
		c.logger.Debug("Release of export failed", "err", err)
	}
}

// release queues an export for release; if the queue is full it releases
// inline so exports never pile up.
func (c *Client) release(s *session, ticket []byte) {
	select {
	case c.releases <- releaseJob{s: s, ticket: ticket}:
	default:
		c.releaseNow(releaseJob{s: s, ticket: ticket})
	}
}

// WaitReleases blocks until every release queued so far has been sent.
func (c *Client) WaitReleases(ctx context.Context) error {
	done := make(chan struct{})
	s, err := c.active()
	if err != nil {
		return err
	}
	select {
	case c.releases <- releaseJob{s: s, ticket: nil, done: done}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
