// Package progress bounds a streamed HTTP exchange by its progress rather
// than its length: it trades the http.Server's ReadTimeout and
// WriteTimeout, which bound a whole request, for a bound on each read of
// the request body and each write or flush of the response. The data plane
// (the dispatcher, the runtime's invocation endpoint) uses it, so that a
// long upload, download or event stream lasts as long as the client keeps
// up, and a client that stalls is cut.
package progress

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Requests trade the http.Server's ReadTimeout and WriteTimeout, which
// bound a whole request, for a bound on progress (the timeout given to
// Deadlines): each read of the request body and each write or flush
// of the response must finish within the timeout, and between them there
// is no deadline. So a long upload, download or event stream, quiet or
// not, lasts as long as the client keeps up, and a client that stalls is
// cut. Deadlines hold only while an operation runs because on HTTP/2 a
// deadline is a timer that resets the stream when it fires, whether or not
// anything is being read or written, and on HTTP/1 net/http reads in the
// background once the body is read, to notice a client that goes away.
//
// Work that net/http does after the handler returns (the last flush of
// the response, the drain of an unread request body) gets the timeout
// from release. An upgraded connection (WebSocket) has no deadline.
//
// Setting a deadline is best effort, so its error is dropped on purpose:
// http.ResponseController reports ErrNotSupported for a ResponseWriter
// without deadlines (a test's recorder), which then serves without a stall
// bound, and a connection that cannot take a deadline any more fails the
// read or write that follows, where the error is handled.
//
// Setting a deadline is best effort, so its error is dropped on purpose:
// http.ResponseController reports ErrNotSupported for a ResponseWriter
// without deadlines (a test's recorder), which then serves without a stall
// bound, and a connection that cannot take a deadline any more fails the
// read or write that follows, where the error is handled.

// Deadlines clears the deadlines of a request and returns w and r wrapped
// so that each body read and response write gets timeout, and the body, if
// any (nil for a request without one). Call release before the handler
// returns: after that, the connection may be serving another request,
// whose deadlines are not this one's to set.
func Deadlines(w http.ResponseWriter, r *http.Request, rc *http.ResponseController, timeout time.Duration) (_ http.ResponseWriter, _ *http.Request, _ *Body, release func()) {
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	var body *Body
	if r.Body != nil && r.Body != http.NoBody {
		body = &Body{ReadCloser: r.Body, rc: rc, timeout: timeout}
		r2 := new(http.Request)
		*r2 = *r
		r2.Body = body
		r = r2
	}
	sw := &streamWriter{ResponseWriter: w, rc: rc, timeout: timeout, body: body, http1: r.ProtoMajor == 1}
	return sw, r, body, sw.release
}

// streamWriter gives every write and flush the timeout, and clears both
// deadlines of a connection handed over for an upgrade. An HTTP/1.1 answer
// that starts before the request body has been read to its end closes the
// connection after it: the rest of the body would have to be read before
// the next request, from a client that may have stopped sending it.
type streamWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	body    *Body
	http1   bool
	started bool
	// hijacked is set once the connection has been handed over: its
	// deadlines are then no longer the request's to set.
	hijacked atomic.Bool
}

// release ends the request's hold on the connection's deadlines, before the
// handler returns. A body not read to its end is closed at once (a client
// still sending it would otherwise keep net/http draining it, without a
// deadline once net/http has cleared it), and an HTTP/1.1 answer not yet
// begun closes the connection after it; the last flush gets the timeout.
func (w *streamWriter) release() {
	if w.hijacked.Load() {
		if w.body != nil {
			w.body.release()
		}
		return
	}
	if w.body != nil {
		if !w.started {
			w.closeIfBodyUnread()
		}
		w.body.stop()
	}
	_ = w.rc.SetReadDeadline(time.Now().Add(w.timeout))
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
}

func (w *streamWriter) WriteHeader(code int) {
	if code >= 200 && !w.started {
		w.started = true
		w.closeIfBodyUnread()
	}
	w.ResponseWriter.WriteHeader(code)
}

// closeIfBodyUnread makes an HTTP/1.1 answer about to begin close the
// connection after it when the request body has not been read to its end.
func (w *streamWriter) closeIfBodyUnread() {
	if w.http1 && w.body != nil && !w.body.eof.Load() {
		w.Header()["Connection"] = []string{"close"}
	}
}

func (w *streamWriter) Write(p []byte) (int, error) {
	if !w.started {
		w.WriteHeader(http.StatusOK)
	}
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	defer func() { _ = w.rc.SetWriteDeadline(time.Time{}) }()
	return w.ResponseWriter.Write(p)
}

// FlushError flushes the answer to the client (http.ResponseController).
func (w *streamWriter) FlushError() error {
	if !w.started {
		w.WriteHeader(http.StatusOK)
	}
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	defer func() { _ = w.rc.SetWriteDeadline(time.Time{}) }()
	return w.rc.Flush()
}

// Flush flushes the answer to the client (http.Flusher).
func (w *streamWriter) Flush() { _ = w.FlushError() }

// Hijack hands the connection over for an upgraded protocol, which lasts
// until one side closes it: without deadlines (http.ResponseController).
func (w *streamWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	_ = w.rc.SetReadDeadline(time.Time{})
	_ = w.rc.SetWriteDeadline(time.Time{})
	conn, brw, err := w.rc.Hijack()
	if err == nil {
		w.hijacked.Store(true)
	}
	return conn, brw, err
}

// Unwrap gives http.ResponseController the client's ResponseWriter.
func (w *streamWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Body is a request body that gives every read the timeout, and its Close
// (which drains what is left) too. The transport may read the body
// from a goroutine of its own, even after the handler has returned: after
// release it no longer touches the connection's deadlines. (ReverseProxy
// does not close the bodies it forwards; the runtime's handler may.)
type Body struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration

	// stalled is set once a read failed because the client sent nothing
	// for the timeout; eof once the body has been read to its end.
	stalled, eof atomic.Bool

	mu       sync.Mutex
	released bool
	// onEOF, if set, runs once, when the body has been read to its end.
	onEOF func()
}

func (b *Body) Read(p []byte) (int, error) {
	b.setReadDeadline(time.Now().Add(b.timeout))
	n, err := b.ReadCloser.Read(p)
	b.setReadDeadline(time.Time{})
	switch {
	case err == io.EOF:
		b.eof.Store(true)
		b.mu.Lock()
		f := b.onEOF
		b.onEOF = nil
		b.mu.Unlock()
		if f != nil {
			f()
		}
	case err != nil && IsTimeout(err):
		b.stalled.Store(true)
	}
	return n, err
}

// Close closes the body, which reads and drops what the client has yet to
// send, within the timeout.
func (b *Body) Close() error {
	b.setReadDeadline(time.Now().Add(b.timeout))
	defer b.setReadDeadline(time.Time{})
	return b.ReadCloser.Close()
}

// WhenRead arranges for f to run once the body has been read to its end.
func (b *Body) WhenRead(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.onEOF = f
}

func (b *Body) setReadDeadline(t time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.released {
		_ = b.rc.SetReadDeadline(t)
	}
}

// release stops the body from setting the connection's deadlines.
func (b *Body) release() {
	b.mu.Lock()
	b.released = true
	b.mu.Unlock()
}

// stop releases the body and, unless it was read to its end, ends any read
// in flight (by the transport, which may outlive the handler) and closes
// it at once: its rest will not be read, so a client still sending it, or
// stalled, cannot keep net/http draining it.
func (b *Body) stop() {
	b.mu.Lock()
	b.released = true
	unread := !b.eof.Load()
	if unread {
		_ = b.rc.SetReadDeadline(time.Now())
	}
	b.mu.Unlock()
	if unread {
		_ = b.ReadCloser.Close()
	}
}

// Stalled reports whether the body stopped coming: the client sent nothing
// for the timeout. A nil Body never stalls.
func (b *Body) Stalled() bool { return b != nil && b.stalled.Load() }

// IsTimeout reports whether err is a deadline or timeout that passed
// (os.ErrDeadlineExceeded is one too).
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Handler wraps h so that each of its requests is bounded by progress
// (Deadlines with timeout) instead of the server's whole-request
// timeouts: for a long stream such as a server-streaming RPC.
func Handler(h http.Handler, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w, r, _, release := Deadlines(w, r, http.NewResponseController(w), timeout)
		defer release()
		h.ServeHTTP(w, r)
	})
}
