package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/sync/semaphore"
)

// Defaults of a BodyBudget.
const (
	// DefaultBodyWait is how long a request waits for its share of the
	// budget before it is refused with resource_exhausted (HTTP 429).
	DefaultBodyWait = 30 * time.Second
	// bodyChunk is how much budget a body of unknown length takes at a
	// time as it is read.
	bodyChunk = 1 << 20
)

// ErrBodyBudget is the message a request gets when the server's body
// budget stays exhausted for longer than its wait.
var ErrBodyBudget = errors.New("the server is reading too many request bodies at once; try again shortly")

// BodyBudget bounds the request body bytes a whole server holds at once:
// a semaphore of bytes, not a per-request limit. A request with a
// Content-Length takes that much (at most the whole budget) before its
// body is read; one without takes 1 MiB at a time as its body is read.
// The bytes are given back when the request's handler returns, since a
// handler holds the decoded message until then. A request that cannot get
// its share within the wait is refused with resource_exhausted (HTTP 429
// for REST), so a flood of uploads queues, then fails, instead of growing
// the process's memory.
type BodyBudget struct {
	size     int64
	wait     time.Duration
	sem      *semaphore.Weighted
	inFlight atomic.Int64
	errors   *connect.ErrorWriter
}

// NewBodyBudget returns a budget of size bytes (at least 1 MiB) whose
// requests wait at most wait (DefaultBodyWait when 0) for their share.
func NewBodyBudget(size int64, wait time.Duration) *BodyBudget {
	size = max(size, bodyChunk)
	if wait <= 0 {
		wait = DefaultBodyWait
	}
	return &BodyBudget{size: size, wait: wait, sem: semaphore.NewWeighted(size), errors: connect.NewErrorWriter()}
}

// Size returns the budget in bytes.
func (b *BodyBudget) Size() int64 { return b.size }

// InFlight returns the budget bytes taken now.
func (b *BodyBudget) InFlight() int64 { return b.inFlight.Load() }

// acquire takes n bytes, waiting at most b.wait.
func (b *BodyBudget) acquire(ctx context.Context, n int64) error {
	ctx, cancel := context.WithTimeout(ctx, b.wait)
	defer cancel()
	if err := b.sem.Acquire(ctx, n); err != nil {
		return connect.NewError(connect.CodeResourceExhausted, ErrBodyBudget)
	}
	b.inFlight.Add(n)
	return nil
}

func (b *BodyBudget) release(n int64) {
	if n > 0 {
		b.inFlight.Add(-n)
		b.sem.Release(n)
	}
}

// Middleware applies the budget to every request with a body. Use it with
// WithMiddleware, inside any middleware that refuses requests before
// their body is read.
func (b *BodyBudget) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			next.ServeHTTP(w, r)
			return
		}
		br := &budgetReader{b: b, ctx: r.Context(), body: r.Body}
		defer func() { b.release(br.held) }()
		if r.ContentLength > 0 {
			n := min(r.ContentLength, b.size)
			if err := b.acquire(r.Context(), n); err != nil {
				b.refuse(w, r, err)
				return
			}
			br.held = n
			// The server stops the body at its Content-Length: no more
			// budget is needed unless it is larger than the budget.
			br.done = n == r.ContentLength
		}
		r.Body = br
		next.ServeHTTP(w, r)
	})
}

// refuse answers a request refused for want of budget, in its protocol:
// Connect, gRPC or gRPC-Web when it speaks one, else as REST (429 with a
// google.rpc.Status body, as the REST transcoder writes errors).
func (b *BodyBudget) refuse(w http.ResponseWriter, r *http.Request, err error) {
	w.Header().Set("Retry-After", "1")
	if b.errors.IsSupported(r) {
		_ = b.errors.Write(w, r, err)
		return
	}
	WriteRESTError(w, http.StatusTooManyRequests, connect.CodeResourceExhausted, ErrBodyBudget.Error())
}

// WriteRESTError writes an error answer to a REST request as the REST
// transcoder writes them: the HTTP status and a google.rpc.Status JSON body.
func WriteRESTError(w http.ResponseWriter, status int, code connect.Code, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `{"code":%d,"message":%q,"details":[]}`+"\n", int(code), msg)
}

// budgetReader reads a request body, taking budget for what it reads
// beyond what it holds.
type budgetReader struct {
	b    *BodyBudget
	ctx  context.Context
	body io.ReadCloser
	held int64 // budget bytes taken
	read int64 // body bytes read
	done bool  // held covers the whole body
}

func (r *budgetReader) Read(p []byte) (int, error) {
	if want := r.read + int64(len(p)); !r.done && want > r.held && r.held < r.b.size {
		n := min(max(want-r.held, bodyChunk), r.b.size-r.held)
		if err := r.b.acquire(r.ctx, n); err != nil {
			return 0, err
		}
		r.held += n
	}
	// Read no further than the budget held; a body larger than the whole
	// budget reads on (the handler's own message limit refuses it).
	if room := r.held - r.read; !r.done && room > 0 && int64(len(p)) > room {
		p = p[:room]
	}
	n, err := r.body.Read(p)
	r.read += int64(n)
	return n, err
}

func (r *budgetReader) Close() error { return r.body.Close() }
