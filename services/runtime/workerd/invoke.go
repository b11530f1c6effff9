package workerd

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"time"
)

// Target names the worker version a request runs on and the request it sees.
type Target struct {
	// Namespace is the dispatch namespace, and so the process pool.
	Namespace string
	// Script is the script name.
	Script string
	// Version is the version number. The caller has checked that the
	// version exists: a failed load is cached by workerd for the id forever.
	Version int64
	// SecretsGeneration is part of the loader id, so that changed secrets
	// load a fresh copy of the version.
	SecretsGeneration uint64
	// URL is the absolute URL of the request the worker sees.
	URL string
	// Host is the Host header sent along.
	Host string
}

// LoaderID is the Worker Loader id of the target:
// "<namespace>/<script>@<version>", with "#s<generation>" appended once the
// script's secrets have changed.
func (t *Target) LoaderID() string {
	id := t.Namespace + "/" + t.Script + "@" + strconv.FormatInt(t.Version, 10)
	if t.SecretsGeneration > 0 {
		id += "#s" + strconv.FormatUint(t.SecretsGeneration, 10)
	}
	return id
}

type ctxKey struct{}

type invocation struct {
	t    *Target
	proc *proc
}

// Control headers between the supervisor and the router.
const (
	hdrKey   = "x-dotdo-key"
	hdrOp    = "x-dotdo-op"
	hdrID    = "x-dotdo-id"
	hdrCode  = "x-dotdo-code"
	hdrURL   = "x-dotdo-url"
	hdrError = "x-dotdo-error"
	hdrAuth  = "x-dotdo-auth"
)

// ControlHeaders lists the request headers the supervisor uses to talk to
// the router; they are set by the supervisor and removed before a worker
// sees the request.
var ControlHeaders = []string{hdrKey, hdrOp, hdrID, hdrCode, hdrURL}

// WriteError writes the JSON error body used by the invocation path:
// {"error": msg}.
func WriteError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// Invoke runs r on the target worker in its namespace's workerd process and
// streams the worker's response to w. Request and response bodies are
// streamed in both directions. The caller must have removed its own
// credentials from r.
func (s *Supervisor) Invoke(w http.ResponseWriter, r *http.Request, t Target) {
	p, err := s.acquire(r.Context(), t.Namespace)
	if err != nil {
		switch {
		case r.Context().Err() != nil:
		case errors.Is(err, ErrNotFound):
			WriteError(w, http.StatusNotFound, "Worker not found")
		default:
			s.log.Error("workerd: no process for request", "namespace", t.Namespace, "err", err)
			WriteError(w, http.StatusServiceUnavailable, "Worker runtime unavailable")
		}
		return
	}
	defer s.release(p)
	ctx := context.WithValue(r.Context(), ctxKey{}, &invocation{t: &t, proc: p})
	p.rp.ServeHTTP(w, r.WithContext(ctx))
}

func (s *Supervisor) newReverseProxy(p *proc) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Transport: p.tr,
		// FlushInterval 0: ReverseProxy flushes at once every response of
		// unknown length (a streamed body) and event streams, and writes a
		// response of known length in one go.
		Rewrite: func(pr *httputil.ProxyRequest) {
			inv := pr.In.Context().Value(ctxKey{}).(*invocation)
			t := inv.t
			out := pr.Out
			out.URL.Scheme = "http"
			out.URL.Host = p.addr
			out.URL.Path = "/"
			out.URL.RawPath = ""
			out.URL.RawQuery = ""
			out.Host = t.Host
			// ReverseProxy drops these before Rewrite; the worker should see
			// what the dispatcher sent.
			for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded"} {
				if v, ok := pr.In.Header[k]; ok {
					out.Header[k] = v
				}
			}
			h := out.Header
			h.Set(hdrKey, s.key)
			h.Set(hdrOp, "invoke")
			h.Set(hdrID, t.LoaderID())
			h.Set(hdrCode, "/code/"+p.id+"/"+t.Namespace+"/"+t.Script+"/"+strconv.FormatInt(t.Version, 10))
			h.Set(hdrURL, t.URL)
		},
		ModifyResponse: func(res *http.Response) error {
			kind := res.Header.Get(hdrError)
			auth := res.Header.Get(hdrAuth)
			res.Header.Del(hdrError)
			res.Header.Del(hdrAuth)
			if kind == "" || subtle.ConstantTimeCompare([]byte(auth), []byte(s.key)) != 1 {
				return nil
			}
			inv := res.Request.Context().Value(ctxKey{}).(*invocation)
			s.log.Warn("worker error", "namespace", inv.t.Namespace, "script", inv.t.Script,
				"version", inv.t.Version, "kind", kind, "status", res.StatusCode)
			if kind == "code" {
				// The failed load is cached for this id in this process:
				// replace the process so the next request loads afresh.
				s.goBG(func() {
					s.recycle(p, "worker code was unavailable to a load")
				})
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return // the client went away
			}
			inv := r.Context().Value(ctxKey{}).(*invocation)
			s.log.Warn("workerd: request failed", "namespace", inv.t.Namespace, "script", inv.t.Script,
				"version", inv.t.Version, "pid", p.pid, "process_alive", p.alive(), "err", err)
			WriteError(w, http.StatusBadGateway, "Worker runtime failed while handling the request")
		},
	}
}

// StartupError reports that a worker failed its startup check. Message is
// workerd's description (for example "Uncaught Error: boom\n  at main.js:1:7")
// and is meant for the uploader.
type StartupError struct {
	// Message describes the failure for the uploader.
	Message string
	// Timeout is true when the worker did not finish starting in time (or
	// hung its process).
	Timeout bool
}

// Error describes the failure.
func (e *StartupError) Error() string { return "worker failed to start: " + e.Message }

var errProbeTimeout = errors.New("startup check timed out")

type probeResult struct {
	OK    bool   `json:"ok"`
	Error string `json:"error"`
	Code  bool   `json:"code"`
}

// CheckStartup loads b in the startup-check process, under a fresh id, and
// reports whether it starts: a top-level throw, a syntax error, a missing
// import or an unsupported compatibility date give a *StartupError. None of
// the worker's handlers runs. A worker that hangs at start-up hangs only the
// check process, which is killed; the check then fails with Timeout set. It
// returns how long the start took.
func (s *Supervisor) CheckStartup(ctx context.Context, b *Bundle) (time.Duration, error) {
	tid := randomHex(12)
	s.mu.Lock()
	s.trials[tid] = b
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.trials, tid)
		s.mu.Unlock()
	}()
	for attempt := 0; ; attempt++ {
		p, err := s.acquire(ctx, CheckPool)
		if err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		d, res, err := s.probe(ctx, p, tid)
		s.release(p)
		switch {
		case err == nil && res.OK:
			return d, nil
		case err == nil && res.Code:
			return 0, fmt.Errorf("%w: the check process could not read the worker's code: %s", ErrUnavailable, res.Error)
		case err == nil:
			return d, &StartupError{Message: cleanStartupMessage(res.Error)}
		case ctx.Err() != nil:
			return 0, ctx.Err()
		case errors.Is(err, errProbeTimeout):
			s.kill(p, "startup check timed out")
			return d, &StartupError{Message: "Script startup exceeded the time limit.", Timeout: true}
		case !p.alive() && attempt == 0 && p.inflightAtKill.Load() > 1:
			// The process died under this check while other checks ran on
			// it: one of them may have hung it. Try once more on a fresh one.
			continue
		case !p.alive():
			// This check was alone on the process (or failed twice): it
			// hung or crashed the process.
			return d, &StartupError{Message: "Script startup exceeded the CPU time or memory limit.", Timeout: true}
		default:
			return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
	}
}

func (s *Supervisor) probe(ctx context.Context, p *proc, tid string) (time.Duration, probeResult, error) {
	var res probeResult
	pctx, cancel := context.WithTimeout(ctx, s.opt.StartupCheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodGet, "http://"+p.addr+"/", nil)
	if err != nil {
		return 0, res, err
	}
	req.Header.Set(hdrKey, s.key)
	req.Header.Set(hdrOp, "check")
	req.Header.Set(hdrID, "trial/"+tid)
	req.Header.Set(hdrCode, "/trial/"+p.id+"/"+tid)
	start := time.Now()
	resp, err := p.client.Do(req)
	d := time.Since(start)
	if err != nil {
		if errors.Is(pctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			return d, res, errProbeTimeout
		}
		return d, res, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return d, res, err
	}
	if resp.Header.Get(hdrError) != "check" || subtle.ConstantTimeCompare([]byte(resp.Header.Get(hdrAuth)), []byte(s.key)) != 1 {
		return d, res, fmt.Errorf("unexpected router answer: status %d", resp.StatusCode)
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return d, res, err
	}
	return d, res, nil
}

func cleanStartupMessage(msg string) string {
	msg = strings.TrimPrefix(msg, "Failed to start Worker:\n")
	msg = strings.TrimSpace(msg)
	if strings.HasPrefix(msg, "internal error") {
		// workerd hides the cause; the usual one is a module without a
		// default export.
		return "The Worker could not be started: its main module must export a default handler object or class."
	}
	return msg
}

// serveCode is the code server: the router's loader callback fetches
//
//	/code/<process>/<namespace>/<script>/<version>   a stored version
//	/trial/<process>/<check id>                      a bundle under startup check
//
// Each fetch is one load in that process, which is how the supervisor
// counts loaded versions.
func (s *Supervisor) serveCode(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	var (
		procID string
		b      *Bundle
		err    error
	)
	switch {
	case len(parts) == 5 && parts[0] == "code":
		procID = parts[1]
		v, perr := strconv.ParseInt(parts[4], 10, 64)
		if perr != nil {
			http.Error(w, "bad version", http.StatusBadRequest)
			return
		}
		b, err = s.opt.Source.Bundle(parts[2], parts[3], v)
	case len(parts) == 3 && parts[0] == "trial":
		procID = parts[1]
		s.mu.Lock()
		b = s.trials[parts[2]]
		s.mu.Unlock()
		if b == nil {
			err = ErrNotFound
		}
	default:
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	s.mu.Lock()
	p := s.procs[procID]
	s.mu.Unlock()
	if p != nil {
		if n := p.loaded.Add(1); n > int64(p.pool.maxLoaded) && !p.retired.Load() {
			s.goBG(func() {
				s.recycle(p, fmt.Sprintf("loaded versions %d above bound %d", n, p.pool.maxLoaded))
			})
		}
	}
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		s.log.Error("workerd code server: reading worker code", "path", r.URL.Path, "err", err)
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	body, err := b.encode()
	if err != nil {
		s.log.Error("workerd code server: encoding worker code", "path", r.URL.Path, "err", err)
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}
