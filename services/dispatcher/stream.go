package dispatcher

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Forwarded requests trade the http.Server's ReadTimeout and WriteTimeout,
// which bound a whole request, for a bound on progress (Config.
// StreamTimeout): every read of the request body and every write of the
// response gets StreamTimeout. So a long upload, download or event stream
// lasts as long as the client keeps up, and a client that stalls is cut
// after StreamTimeout. Outside the body's reads there is no read deadline:
// net/http reads in the background to notice a client that goes away, and
// a deadline there would end a healthy request whose client has nothing
// more to send. An upgraded connection (WebSocket) has no deadline at all.

// streamDeadlines sets the first deadlines of a forwarded request and
// returns w and r wrapped so that reads and writes move them. Call release
// before ServeHTTP returns: after that, the connection may be serving
// another request, whose deadlines are not this one's to move.
func (d *Dispatcher) streamDeadlines(w http.ResponseWriter, r *http.Request, rc *http.ResponseController) (http.ResponseWriter, *http.Request, func()) {
	timeout := d.cfg.StreamTimeout
	_ = rc.SetReadDeadline(time.Time{})
	// The answer starts once the runtime has sent its headers.
	_ = rc.SetWriteDeadline(time.Now().Add(d.cfg.UpstreamTimeout + timeout))
	sw := &streamWriter{ResponseWriter: w, rc: rc, timeout: timeout}
	if r.Body == nil || r.Body == http.NoBody {
		return sw, r, func() {}
	}
	body := &streamBody{ReadCloser: r.Body, rc: rc, timeout: timeout}
	r2 := new(http.Request)
	*r2 = *r
	r2.Body = body
	return sw, r2, body.release
}

// streamWriter moves the write deadline before every write and flush, and
// clears both deadlines of a connection handed over for an upgrade.
type streamWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (w *streamWriter) Write(p []byte) (int, error) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	return w.ResponseWriter.Write(p)
}

// FlushError flushes the answer to the client (http.ResponseController).
func (w *streamWriter) FlushError() error {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	return w.rc.Flush()
}

// Flush flushes the answer to the client (http.Flusher).
func (w *streamWriter) Flush() { _ = w.FlushError() }

// Hijack hands the connection over for an upgraded protocol, which lasts
// until one side closes it: without deadlines (http.ResponseController).
func (w *streamWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	_ = w.rc.SetReadDeadline(time.Time{})
	_ = w.rc.SetWriteDeadline(time.Time{})
	return w.rc.Hijack()
}

// Unwrap gives http.ResponseController the client's ResponseWriter.
func (w *streamWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// streamBody gives every read of the request body StreamTimeout, and
// clears the read deadline once the body is read, until release. The
// transport may read the body from a goroutine of its own, even after the
// handler has returned.
type streamBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration

	mu       sync.Mutex
	released bool
}

func (b *streamBody) Read(p []byte) (int, error) {
	b.setReadDeadline(time.Now().Add(b.timeout))
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.setReadDeadline(time.Time{})
	}
	return n, err
}

func (b *streamBody) setReadDeadline(t time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.released {
		_ = b.rc.SetReadDeadline(t)
	}
}

func (b *streamBody) release() {
	b.mu.Lock()
	b.released = true
	b.mu.Unlock()
}
