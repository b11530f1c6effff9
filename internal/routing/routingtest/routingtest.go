// Package routingtest holds the routing test vectors that both routers of
// the platform must pass, the Go dispatcher and the generated dispatch
// Worker, and the means to run them: the stand-in for a worker that
// answers with what it received, and a workerd process that runs a
// generated Worker with a stand-in for its dispatch namespace binding.
//
// The vectors (vectors.json) name a table, a request (method, host, path,
// request id) and the answer: the worker that serves it and the rule that
// picked it, or the status, code and message of the JSON error. A vector
// marked "only": "go" describes a request that never reaches a Worker as
// written (workerd, like Cloudflare's edge, resolves dot segments and
// backslashes and refuses some malformed requests before the Worker runs);
// "why" says so.
package routingtest

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/dot-do/platform/internal/routing"
)

//go:embed vectors.json
var vectorsJSON []byte

// Suite is the file of test vectors.
type Suite struct {
	// Environment is the environment the tables belong to; it appears in
	// the no_live_version message.
	Environment string `json:"environment"`
	// Namespace is the environment's dispatch namespace.
	Namespace string `json:"namespace"`
	// Deployed are the workers with a live version; any other worker of a
	// table has none.
	Deployed []string `json:"deployed"`
	// Tables are the tables the vectors name.
	Tables map[string]routing.Table `json:"tables"`
	// Vectors are the requests and their answers.
	Vectors []Vector `json:"vectors"`
}

// Vector is one request and the answer both routers must give it.
type Vector struct {
	// Table names the table of Suite.Tables the request is routed with.
	Table string `json:"table"`
	// Method is the request's method (GET when empty).
	Method string `json:"method,omitempty"`
	// Host is the Host header.
	Host string `json:"host"`
	// Path is the request target's path, as sent.
	Path string `json:"path"`
	// RequestID, when set, is sent as X-Request-Id and must come back,
	// unless ReplaceRequestID says that it is malformed and must be
	// replaced by a new one.
	RequestID        string `json:"request_id,omitempty"`
	ReplaceRequestID bool   `json:"replace_request_id,omitempty"`

	// Worker is the worker that must serve the request ("" for an error).
	Worker string `json:"worker,omitempty"`
	// Rule is the rule that picks Worker: subdomain, path or default.
	Rule string `json:"rule,omitempty"`
	// Status, Code and Message describe the JSON error answer.
	Status  int    `json:"status,omitempty"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`

	// Only is "go" for a vector only the Go router sees as written; Why
	// says why.
	Only string `json:"only,omitempty"`
	Why  string `json:"why,omitempty"`
}

// Load returns the test vectors.
func Load() (Suite, error) {
	var s Suite
	if err := json.Unmarshal(vectorsJSON, &s); err != nil {
		return Suite{}, fmt.Errorf("routingtest: vectors.json: %w", err)
	}
	for name, t := range s.Tables {
		if _, err := routing.Compile(t); err != nil {
			return Suite{}, fmt.Errorf("routingtest: table %q: %w", name, err)
		}
	}
	for i, v := range s.Vectors {
		if _, ok := s.Tables[v.Table]; !ok {
			return Suite{}, fmt.Errorf("routingtest: vector %d names no table (%q)", i, v.Table)
		}
		if (v.Worker == "") == (v.Status == 0) {
			return Suite{}, fmt.Errorf("routingtest: vector %d (%s): want a worker or an error status", i, v)
		}
	}
	return s, nil
}

// String names v for test output.
func (v Vector) String() string {
	return fmt.Sprintf("%s %s %q %q", v.Table, v.method(), v.Host, v.Path)
}

func (v Vector) method() string {
	if v.Method == "" {
		return http.MethodGet
	}
	return v.Method
}

// IsDeployed reports whether worker has a live version.
func (s Suite) IsDeployed(worker string) bool {
	for _, w := range s.Deployed {
		if w == worker {
			return true
		}
	}
	return false
}

// Request returns v's request to the router at baseURL (scheme and
// authority), with v's Host header and path as sent.
func (v Vector) Request(baseURL string) (*http.Request, error) {
	req, err := http.NewRequest(v.method(), baseURL+"/", nil)
	if err != nil {
		return nil, err
	}
	req.Host = v.Host
	req.URL.Opaque = v.Path // sent as the request target, unchanged
	if v.Path == "" {
		req.URL.Opaque = ""
	}
	if v.RequestID != "" {
		req.Header.Set("X-Request-Id", v.RequestID)
	}
	return req, nil
}

// Echo is what a stand-in worker answers: the worker's name and the
// method, path and request id of the request it received.
type Echo struct {
	Worker    string `json:"worker"`
	Method    string `json:"method"`
	Path      string `json:"path"`
	RequestID string `json:"request_id"`
}

// WriteEcho answers r as the stand-in worker named worker does, path being
// the path the worker sees.
func WriteEcho(w http.ResponseWriter, r *http.Request, worker, path string) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(Echo{Worker: worker, Method: r.Method, Path: path, RequestID: r.Header.Get("X-Request-Id")})
}

type errorBody struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

// Check checks res, the answer to v's request, against v. It reads and
// closes the body.
func (v Vector) Check(res *http.Response) error {
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read the answer: %w", err)
	}
	id := res.Header.Get("X-Request-Id")
	if id == "" {
		return fmt.Errorf("no X-Request-Id in the answer (HTTP %d %s)", res.StatusCode, body)
	}
	switch {
	case v.ReplaceRequestID && id == v.RequestID:
		return fmt.Errorf("X-Request-Id %q: the malformed request id was kept", id)
	case v.RequestID != "" && !v.ReplaceRequestID && id != v.RequestID:
		return fmt.Errorf("X-Request-Id %q; want the request's %q", id, v.RequestID)
	}
	if v.Worker != "" {
		var e Echo
		if res.StatusCode != http.StatusOK || json.Unmarshal(body, &e) != nil {
			return fmt.Errorf("HTTP %d %s; want worker %s's answer", res.StatusCode, strings.TrimSpace(string(body)), v.Worker)
		}
		want := Echo{Worker: v.Worker, Method: v.method(), Path: v.Path, RequestID: id}
		if want.Path == "" {
			want.Path = "/"
		}
		if e != want {
			return fmt.Errorf("the worker got %+v; want %+v", e, want)
		}
		return nil
	}
	var e errorBody
	if err := json.Unmarshal(body, &e); err != nil {
		return fmt.Errorf("HTTP %d %q is not a JSON error", res.StatusCode, body)
	}
	if res.StatusCode != v.Status || e.Error.Code != v.Code || e.Error.Message != v.Message || e.Error.RequestID != id {
		return fmt.Errorf("HTTP %d %s %q (request id %q); want HTTP %d %s %q (request id %q)",
			res.StatusCode, e.Error.Code, e.Error.Message, e.Error.RequestID, v.Status, v.Code, v.Message, id)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		return fmt.Errorf("Content-Type %q; want application/json; charset=utf-8", ct)
	}
	return nil
}
