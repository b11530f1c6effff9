package workerd

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"
)

// connPool is a keep-alive pool of HTTP/1.1 connections to one process,
// for requests without a body (most of a worker's traffic). Such a request
// is written and its response read in the request's own goroutine, with
// none of http.Transport's per-request goroutine handoffs; requests with a
// body, which may stream in both directions at once, use the Transport.
type connPool struct {
	sock string
	mu   sync.Mutex
	idle []*pooledConn
}

// maxIdleConns bounds the idle connections kept per process.
const maxIdleConns = 128

type pooledConn struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer
	// stop ends the watch on the current request's context, which cuts
	// the connection when the client goes away.
	stop func() bool
	// line is the buffer the request line is written into.
	line []byte
}

var dialer = net.Dialer{Timeout: 5 * time.Second}

func (p *connPool) get(ctx context.Context) (pc *pooledConn, reused bool, err error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		pc = p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return pc, true, nil
	}
	p.mu.Unlock()
	c, err := dialer.DialContext(ctx, "unix", p.sock)
	if err != nil {
		return nil, false, err
	}
	return &pooledConn{c: c, br: bufio.NewReaderSize(c, 16<<10), bw: bufio.NewWriterSize(c, 4<<10)}, false, nil
}

func (p *connPool) put(pc *pooledConn) {
	p.mu.Lock()
	if len(p.idle) < maxIdleConns {
		p.idle = append(p.idle, pc)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	_ = pc.c.Close()
}

func (p *connPool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, pc := range idle {
		_ = pc.c.Close()
	}
}

// idempotent reports whether a request may be sent again when a reused
// connection turned out closed (RFC 9110, section 9.2.2).
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// roundTrip sends req, which has no body, on a pooled connection and
// reads the response head. The response's body returns the connection to
// the pool once read to its end. A reused connection that the process had
// closed is replaced, once, for an idempotent request.
func (p *connPool) roundTrip(req *http.Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		pc, reused, err := p.get(req.Context())
		if err != nil {
			return nil, err
		}
		res, err := pc.exchange(req)
		if err == nil {
			res.Body = &pooledBody{body: res.Body, pc: pc, pool: p, keep: !res.Close}
			return res, nil
		}
		_ = pc.c.Close()
		if reused && attempt == 0 && idempotent(req.Method) && req.Context().Err() == nil && staleConn(err) {
			continue
		}
		return nil, err
	}
}

// staleConn reports whether err is how a kept-alive connection that the
// other side had closed fails.
func staleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// exchange writes req on pc and reads the response head; the client's
// going away (req's context) ends the wait.
func (pc *pooledConn) exchange(req *http.Request) (res *http.Response, err error) {
	pc.stop = context.AfterFunc(req.Context(), func() { _ = pc.c.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		if err != nil {
			pc.stop()
		}
	}()
	// The request line and Host, then the headers and the blank line:
	// bufio.Writer's errors stick, so the Flush reports any of them.
	pc.line = append(pc.line[:0], req.Method...)
	pc.line = append(pc.line, ' ')
	pc.line = append(pc.line, req.URL.Opaque...)
	if req.URL.RawQuery != "" {
		pc.line = append(pc.line, '?')
		pc.line = append(pc.line, req.URL.RawQuery...)
	}
	pc.line = append(pc.line, " HTTP/1.1\r\nHost: "...)
	pc.line = append(pc.line, hostReplacer.Replace(req.Host)...)
	pc.line = append(pc.line, "\r\n"...)
	if _, err := pc.bw.Write(pc.line); err != nil {
		return nil, err
	}
	if err := req.Header.Write(pc.bw); err != nil {
		return nil, err
	}
	if _, err := pc.bw.WriteString("\r\n"); err != nil {
		return nil, err
	}
	if err := pc.bw.Flush(); err != nil {
		return nil, err
	}
	for {
		res, err = http.ReadResponse(pc.br, req)
		if err != nil {
			return nil, err
		}
		// An informational answer (103 Early Hints) comes before the one
		// that counts.
		if res.StatusCode >= 200 || res.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		res.Body.Close()
	}
	if err := req.Context().Err(); err != nil {
		res.Body.Close()
		return nil, err
	}
	return res, nil
}

// hostReplacer keeps line breaks out of the Host line.
var hostReplacer = strings.NewReplacer("\r", "", "\n", "")

// pooledBody is a response body that hands its connection back to the
// pool when read to its end, and closes it when abandoned before.
type pooledBody struct {
	body io.ReadCloser
	pc   *pooledConn
	pool *connPool
	keep bool
	done bool
}

func (b *pooledBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.body.Read(p)
	if err == io.EOF {
		b.finish(true)
	} else if err != nil {
		b.finish(false)
	}
	return n, err
}

func (b *pooledBody) Close() error {
	b.finish(false)
	return nil
}

func (b *pooledBody) finish(complete bool) {
	if b.done {
		return
	}
	b.done = true
	_ = b.body.Close()
	if !b.pc.stop() {
		complete = false // the client went away: the deadline is set
	}
	if complete && b.keep {
		b.pool.put(b.pc)
		return
	}
	_ = b.pc.c.Close()
}
