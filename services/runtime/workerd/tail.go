package workerd

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"time"
)

// tailSocket is the supervisor's socket for the tail events of its
// processes (below its private directory).
const tailSocket = "tail.sock"

// tailProps are the props of a process's tail worker: which version the
// events are of.
type tailProps struct {
	Namespace         string `json:"namespace"`
	Script            string `json:"script"`
	Version           int64  `json:"version"`
	SecretsGeneration uint64 `json:"secrets_generation"`
}

// maxTailBatch bounds the body of one batch of tail events.
const maxTailBatch = 8 << 20

// tailSink receives the batches of tail events of the supervisor's
// processes and hands them to Options.OnTail.
type tailSink struct {
	srv  *http.Server
	path string
	done chan struct{}
}

func (s *Supervisor) startTailSink() error {
	path := filepath.Join(s.dir, tailSocket)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	t := &tailSink{path: path, done: make(chan struct{})}
	t.srv = &http.Server{Handler: http.HandlerFunc(s.serveTail), ReadHeaderTimeout: 10 * time.Second}
	s.tail = t
	go func() {
		defer close(t.done)
		if err := t.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("workerd: tail sink stopped", "err", err)
		}
	}()
	return nil
}

func (t *tailSink) close() {
	_ = t.srv.Close()
	<-t.done
}

func (s *Supervisor) serveTail(w http.ResponseWriter, r *http.Request) {
	var batch struct {
		Props  tailProps         `json:"props"`
		Events []json.RawMessage `json:"events"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, maxTailBatch)).Decode(&batch); err != nil {
		http.Error(w, "bad batch", http.StatusBadRequest)
		return
	}
	p := batch.Props
	if s.opt.OnTail != nil && len(batch.Events) > 0 {
		s.opt.OnTail(Key{Namespace: p.Namespace, Script: p.Script, Version: p.Version, SecretsGeneration: p.SecretsGeneration, Tail: true}, batch.Events)
	}
	w.WriteHeader(http.StatusNoContent)
}

// tailConfig returns the props of key's tail worker, "" when key is not
// tailed.
func (s *Supervisor) tailConfig(key Key) (props, socket string) {
	if !key.Tail || s.tail == nil {
		return "", ""
	}
	b, _ := json.Marshal(tailProps{Namespace: key.Namespace, Script: key.Script, Version: key.Version, SecretsGeneration: key.SecretsGeneration})
	return string(b), s.tail.path
}
