package runtime

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dot-do/platform/internal/names"
	"github.com/dot-do/platform/internal/progress"
	"github.com/dot-do/platform/internal/tail"
	"github.com/dot-do/platform/services/runtime/workerd"
)

// TailPrefix is the path prefix of the runtime's tail endpoint, an
// extension of the platform's (Cloudflare has no live tail of namespace
// scripts): GET /tail/{namespace}/{script} with the API token as a bearer
// token streams the script's invocations as NDJSON tail.Message lines, for
// as long as the client reads.
const TailPrefix = "/tail/"

// tailHeartbeat is how often a quiet tail stream gets a line (a count of
// lost events, or an empty line), so that proxies and the client see it
// alive and a client that went away is noticed.
const tailHeartbeat = 10 * time.Second

// tails is the runtime's live tail: who tails which worker, and the events
// of the workers tailed.
type tails struct {
	hub tail.Hub
	// tailed is the set of topics with subscribers, read on every
	// request (so it is a snapshot, replaced when it changes).
	tailed atomic.Pointer[map[string]bool]
	mu     sync.Mutex
	// crons remembers, per tailed version, the cron of the scheduled
	// event fired last, which workerd's tail event lacks; a script's
	// entries go when nobody tails it any more.
	crons sync.Map // workerd.Key -> string
}

func topic(namespace, script string) string { return namespace + "/" + script }

func (t *tails) init() {
	t.tailed.Store(&map[string]bool{})
	t.hub.OnChange = func(topic string, n int) {
		t.mu.Lock()
		defer t.mu.Unlock()
		next := map[string]bool{}
		for k, v := range *t.tailed.Load() {
			next[k] = v
		}
		if n > 0 {
			next[topic] = true
		} else {
			delete(next, topic)
			t.forgetCrons(topic)
		}
		t.tailed.Store(&next)
	}
}

// forgetCrons drops the crons remembered for the versions of topic, which
// nobody tails any more, so that they do not pile up version after
// version.
func (t *tails) forgetCrons(topic string) {
	t.crons.Range(func(k, _ any) bool {
		if key := k.(workerd.Key); key.Namespace+"/"+key.Script == topic {
			t.crons.Delete(k)
		}
		return true
	})
}

// isTailed reports whether someone tails namespace/script.
func (t *tails) isTailed(namespace, script string) bool {
	m := *t.tailed.Load()
	return len(m) > 0 && m[topic(namespace, script)]
}

// traceItem is the part of workerd's tail event (Cloudflare's TraceItem)
// the platform passes on.
type traceItem struct {
	Outcome        string           `json:"outcome"`
	EventTimestamp int64            `json:"eventTimestamp"`
	Logs           []tail.Log       `json:"logs"`
	Exceptions     []tail.Exception `json:"exceptions"`
	Event          struct {
		Request   *tail.Request  `json:"request"`
		Response  *tail.Response `json:"response"`
		RPCMethod string         `json:"rpcMethod"`
	} `json:"event"`
}

// onTail publishes the tail events of key's process.
func (t *tails) onTail(key workerd.Key, raw []json.RawMessage) {
	tp := topic(key.Namespace, key.Script)
	for _, r := range raw {
		var it traceItem
		if err := json.Unmarshal(r, &it); err != nil {
			continue
		}
		e := &tail.Event{
			ScriptName:        key.Script,
			DispatchNamespace: key.Namespace,
			ScriptVersion:     &tail.ScriptVersion{ID: strconv.FormatInt(key.Version, 10)},
			Outcome:           it.Outcome,
			EventTimestamp:    it.EventTimestamp,
			Logs:              it.Logs,
			Exceptions:        it.Exceptions,
		}
		e.Event.Request, e.Event.Response = it.Event.Request, it.Event.Response
		if it.Event.RPCMethod == "scheduled" {
			if c, ok := t.crons.Load(key); ok {
				e.Event.Cron = c.(string)
			}
			e.Event.ScheduledTime = it.EventTimestamp
		}
		if e.Logs == nil {
			e.Logs = []tail.Log{}
		}
		if e.Exceptions == nil {
			e.Exceptions = []tail.Exception{}
		}
		t.hub.Publish(tp, e)
	}
}

// onInvocation publishes an event for an invocation workerd could not
// report itself: one whose process was killed for a limit, or died.
func (t *tails) onInvocation(inv workerd.Invocation) {
	switch inv.Outcome {
	case workerd.OutcomeExceededCPU, workerd.OutcomeExceededMemory, workerd.OutcomeError:
	default:
		return
	}
	if !t.isTailed(inv.Key.Namespace, inv.Key.Script) {
		return
	}
	outcome := inv.Outcome
	if outcome == workerd.OutcomeError {
		outcome = tail.OutcomeUnknown
	}
	e := &tail.Event{
		ScriptName:        inv.Key.Script,
		DispatchNamespace: inv.Key.Namespace,
		ScriptVersion:     &tail.ScriptVersion{ID: strconv.FormatInt(inv.Key.Version, 10)},
		Outcome:           outcome,
		EventTimestamp:    inv.Start.UnixMilli(),
		WallTime:          inv.Duration.Milliseconds(),
		Logs:              []tail.Log{},
		Exceptions:        []tail.Exception{},
	}
	if inv.Status != 0 {
		e.Event.Response = &tail.Response{Status: inv.Status}
	}
	if inv.Scheduled {
		e.Event.Cron, e.Event.ScheduledTime = inv.Cron, inv.Start.UnixMilli()
	}
	t.hub.Publish(topic(inv.Key.Namespace, inv.Key.Script), e)
}

// serveTail streams the invocations of one script (the tail endpoint).
func (rt *Runtime) serveTail(w http.ResponseWriter, r *http.Request) {
	if !rt.apiAuthorized(r) {
		workerd.WriteError(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	ns, script, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, TailPrefix), "/")
	if !ok || !names.ValidScript(ns) || !names.ValidScript(script) {
		workerd.WriteError(w, http.StatusNotFound, "Worker not found")
		return
	}
	if _, err := rt.store.Script(ns, script); err != nil {
		workerd.WriteError(w, http.StatusNotFound, "Worker not found")
		return
	}
	rc := http.NewResponseController(w)
	w, r, _, release := progress.Deadlines(w, r, rc, rt.cfg.StreamTimeout)
	defer release()
	sub := rt.tails.hub.Subscribe(topic(ns, script), 0)
	defer sub.Close()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	flusher, _ := w.(http.Flusher)
	flush := func() {
		if flusher != nil {
			flusher.Flush()
		}
	}
	flush()
	beat := time.NewTicker(tailHeartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-rt.closing:
			return
		case <-rt.tailsDone:
			return
		case e := <-sub.Events():
			if enc.Encode(tail.Message{Event: e}) != nil {
				return
			}
			if n := sub.Lost(); n > 0 && enc.Encode(tail.Message{Lost: n}) != nil {
				return
			}
			flush()
		case <-beat.C:
			msg := tail.Message{Lost: sub.Lost()}
			if msg.Lost == 0 {
				if _, err := w.Write([]byte("\n")); err != nil {
					return
				}
			} else if enc.Encode(msg) != nil {
				return
			}
			flush()
		}
	}
}

// StopTails ends every open tail stream (their clients see the stream
// end), so that a server shutting down need not wait for them.
func (rt *Runtime) StopTails() { rt.stopTails.Do(func() { close(rt.tailsDone) }) }
