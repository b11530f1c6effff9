// Package tail is the platform's live-tail vocabulary, shared by the
// runtime (which produces events), the deploy service (which streams them
// to tailers through the TailWorker RPC) and the CLI (which prints them):
// an Event per worker invocation, shaped as `wrangler tail --format json`
// prints Cloudflare's tail events, filters as `wrangler tail` takes them,
// and a Hub that fans events out to subscribers without ever blocking a
// publisher.
package tail

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
)

// Outcomes of an invocation, as Cloudflare's tail events name them.
const (
	OutcomeOK             = "ok"
	OutcomeException      = "exception"
	OutcomeExceededCPU    = "exceededCpu"
	OutcomeExceededMemory = "exceededMemory"
	OutcomeCanceled       = "canceled"
	OutcomeUnknown        = "unknown"
)

// Event is one invocation of a worker: what triggered it, how it ended,
// and what it logged and threw. Its JSON is wrangler's tail JSON
// (outcome, scriptName, eventTimestamp, event.request, logs, exceptions)
// plus the platform's environment, namespace and version.
type Event struct {
	// ScriptName is the worker.
	ScriptName string `json:"scriptName"`
	// Environment and DispatchNamespace are where it ran.
	Environment       string `json:"environment,omitempty"`
	DispatchNamespace string `json:"dispatchNamespace,omitempty"`
	// ScriptVersion is the version that ran.
	ScriptVersion *ScriptVersion `json:"scriptVersion,omitempty"`
	// Outcome is one of the Outcome* constants.
	Outcome string `json:"outcome"`
	// EventTimestamp is when the invocation began, in Unix milliseconds.
	EventTimestamp int64 `json:"eventTimestamp"`
	// Event is the trigger.
	Event Trigger `json:"event"`
	// Logs are the invocation's console calls, in order.
	Logs []Log `json:"logs"`
	// Exceptions are its uncaught exceptions.
	Exceptions []Exception `json:"exceptions"`
	// WallTime is how long it took, in milliseconds; CPUTime the CPU
	// time it used, when known (0 otherwise).
	WallTime int64 `json:"wallTime"`
	CPUTime  int64 `json:"cpuTime"`
}

// Message is one line of a tail stream between services (NDJSON): an
// event, or the count of events lost because the reader fell behind.
type Message struct {
	Event *Event `json:"event,omitempty"`
	Lost  int64  `json:"lost,omitempty"`
}

// ScriptVersion identifies a version of a worker.
type ScriptVersion struct {
	// ID is the version number, as text.
	ID string `json:"id"`
}

// Trigger is what started an invocation: a request (with its response
// status, once known) or a scheduled event.
type Trigger struct {
	Request  *Request  `json:"request,omitempty"`
	Response *Response `json:"response,omitempty"`
	// Cron and ScheduledTime describe a scheduled event (Cron "" for one
	// fired by hand).
	Cron          string `json:"cron,omitempty"`
	ScheduledTime int64  `json:"scheduledTime,omitempty"`
}

// Request is the request of a fetch event. Headers that carry credentials
// (authorization, cookie, x-api-key) arrive redacted.
type Request struct {
	URL     string            `json:"url"`
	Method  string            `json:"method"`
	Headers map[string]string `json:"headers"`
}

// Response is the response of a fetch event.
type Response struct {
	Status int `json:"status"`
}

// Log is one console call: its level (debug, info, log, warn, error) and
// its arguments as JSON values.
type Log struct {
	Message   []json.RawMessage `json:"message"`
	Level     string            `json:"level"`
	Timestamp int64             `json:"timestamp"`
}

// Text returns the log's arguments as console.log would print them:
// strings as they are, other values as JSON, separated by spaces.
func (l Log) Text() string {
	parts := make([]string, len(l.Message))
	for i, m := range l.Message {
		var s string
		if json.Unmarshal(m, &s) == nil {
			parts[i] = s
		} else {
			parts[i] = string(m)
		}
	}
	return strings.Join(parts, " ")
}

// Exception is an uncaught exception.
type Exception struct {
	Name      string `json:"name"`
	Message   string `json:"message"`
	Stack     string `json:"stack,omitempty"`
	Timestamp int64  `json:"timestamp"`
}

// Failed reports whether the invocation ended in error: anything but ok
// and canceled, as wrangler's --status error means.
func (e *Event) Failed() bool { return e.Outcome != OutcomeOK && e.Outcome != OutcomeCanceled }

// Filter selects events, as `wrangler tail` flags do. The zero Filter
// selects everything.
type Filter struct {
	// Status is "", "ok" (outcome ok), "error" (exception, exceeded CPU or
	// memory, unknown) or "canceled".
	Status []string
	// Methods are HTTP methods (any case); a scheduled event has none.
	Methods []string
	// Search is text that must appear in a log message, an exception or
	// the request URL.
	Search string
	// SamplingRate keeps each matching event with this probability; 0 or
	// 1 keeps all.
	SamplingRate float64
}

// Match reports whether e passes f, sampling included.
func (f *Filter) Match(e *Event) bool {
	if len(f.Status) > 0 && !slices.ContainsFunc(f.Status, func(s string) bool {
		switch s {
		case "ok":
			return e.Outcome == OutcomeOK
		case "canceled":
			return e.Outcome == OutcomeCanceled
		case "error":
			return e.Failed()
		}
		return false
	}) {
		return false
	}
	if len(f.Methods) > 0 {
		if e.Event.Request == nil || !slices.ContainsFunc(f.Methods, func(m string) bool { return strings.EqualFold(m, e.Event.Request.Method) }) {
			return false
		}
	}
	if f.Search != "" && !e.contains(f.Search) {
		return false
	}
	if f.SamplingRate > 0 && f.SamplingRate < 1 && rand.Float64() >= f.SamplingRate {
		return false
	}
	return true
}

func (e *Event) contains(s string) bool {
	if e.Event.Request != nil && strings.Contains(e.Event.Request.URL, s) {
		return true
	}
	for _, l := range e.Logs {
		if strings.Contains(l.Text(), s) {
			return true
		}
	}
	for _, x := range e.Exceptions {
		if strings.Contains(x.Name, s) || strings.Contains(x.Message, s) || strings.Contains(x.Stack, s) {
			return true
		}
	}
	return false
}
