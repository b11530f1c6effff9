package backend

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/internal/tail"
)

// TailSource streams the invocations of a worker from where it runs. The
// local runtime has one (RuntimeTail); Cloudflare's API has no live tail of
// dispatch-namespace scripts.
type TailSource interface {
	// Tail opens the stream of script's invocations in namespace.
	Tail(ctx context.Context, namespace, script string) (TailStream, error)
}

// TailStream is an open stream of tail messages.
type TailStream interface {
	// Next returns the next message; io.EOF when the source ended it.
	Next() (tail.Message, error)
	// Close ends the stream.
	Close() error
}

// RuntimeTail is the TailSource of the local runtime: its tail endpoint,
// GET {BaseURL}/tail/{namespace}/{script}, which streams NDJSON
// tail.Message lines.
type RuntimeTail struct {
	// BaseURL is the runtime's base URL (http://127.0.0.1:8790).
	BaseURL string
	// Token is the runtime's API token (a secret).
	Token string
	// Client makes the requests (http.DefaultClient when nil); it must
	// not time out whole requests, which last as long as the tail.
	Client *http.Client
}

var _ TailSource = RuntimeTail{}

// Tail implements TailSource.
func (rt RuntimeTail) Tail(ctx context.Context, namespace, script string) (TailStream, error) {
	u := strings.TrimSuffix(rt.BaseURL, "/") + "/tail/" + url.PathEscape(namespace) + "/" + url.PathEscape(script)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+rt.Token)
	client := rt.Client
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, &Error{Op: "tail " + script, Sentinel: ErrUnavailable, Cause: err}
	}
	switch res.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		res.Body.Close()
		return nil, errkind.Errorf(errkind.NotFound, "worker %q has no version in namespace %q", script, namespace)
	default:
		res.Body.Close()
		return nil, &Error{Op: "tail " + script, Status: res.StatusCode, Sentinel: kindOfStatus(res.StatusCode)}
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	return &runtimeStream{body: res.Body, sc: sc}, nil
}

// kindOfStatus is the sentinel of a runtime's refusal.
func kindOfStatus(status int) error {
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		return ErrUnauthorized
	}
	return ErrUnavailable
}

type runtimeStream struct {
	body io.ReadCloser
	sc   *bufio.Scanner
}

func (s *runtimeStream) Next() (tail.Message, error) {
	for s.sc.Scan() {
		line := s.sc.Bytes()
		if len(strings.TrimSpace(string(line))) == 0 {
			continue // a heartbeat
		}
		var m tail.Message
		if err := json.Unmarshal(line, &m); err != nil {
			return tail.Message{}, fmt.Errorf("tail: bad line from the runtime: %w", err)
		}
		return m, nil
	}
	if err := s.sc.Err(); err != nil {
		return tail.Message{}, err
	}
	return tail.Message{}, io.EOF
}

func (s *runtimeStream) Close() error { return s.body.Close() }
