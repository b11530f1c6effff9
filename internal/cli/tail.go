package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	deployv1 "github.com/dot-do/platform/gen/go/dotdo/deploy/v1"
	"github.com/dot-do/platform/gen/go/dotdo/deploy/v1/deployv1connect"
	"github.com/dot-do/platform/internal/tail"
)

// runTail is `dotdo tail`, like `wrangler tail`: it streams a worker's
// invocations until interrupted.
func runTail(ctx context.Context, e *Env, args []string) error {
	fs := flags(e, "tail")
	service := fs.String("service", "", "the worker to tail (required)")
	env := fs.String("env", "production", "its environment")
	format := fs.String("format", "", "pretty or json (one JSON object per line, wrangler's tail JSON); default: pretty on a terminal, json otherwise")
	var status, methods stringList
	fs.Var(&status, "status", "keep invocations that ended ok, error or canceled (repeatable)")
	fs.Var(&methods, "method", "keep requests with this HTTP method (repeatable)")
	search := fs.String("search", "", "keep invocations whose logs, exceptions or URL contain this text")
	sampling := fs.Float64("sampling-rate", 1, "keep each matching invocation with this probability (above 0, at most 1)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *service == "" {
		return usagef("--service is required")
	}
	if *format == "" {
		*format = "json"
		if isTerminal(e.Stdout) {
			*format = "pretty"
		}
	}
	if *format != "pretty" && *format != "json" {
		return usagef("--format is pretty or json, not %q", *format)
	}
	if *sampling <= 0 || *sampling > 1 {
		return usagef("--sampling-rate is above 0 and at most 1, not %v", *sampling)
	}
	// A tail lasts as long as it is read: no whole-request timeout.
	client := deployv1connect.NewLogServiceClient(&http.Client{}, e.apiURL())
	req := connect.NewRequest(&deployv1.TailWorkerRequest{
		Service: *service, Environment: *env, Status: status, Method: methods, Search: *search, SamplingRate: *sampling,
	})
	if key := e.apiKey(); key != "" {
		req.Header().Set("Authorization", "Bearer "+key)
	}
	stream, err := client.TailWorker(ctx, req)
	if err != nil {
		return err
	}
	defer stream.Close()
	for stream.Receive() {
		m := stream.Msg()
		if st := m.GetStarted(); st != nil {
			fmt.Fprintf(e.Stderr, "Tailing %s in %s until %s; waiting for invocations (Ctrl-C to stop)\n",
				*service, *env, st.GetExpiresAt().AsTime().Local().Format("2006-01-02 15:04"))
			continue
		}
		if n := m.GetDropped(); n > 0 {
			fmt.Fprintf(e.Stderr, "%d events dropped: the tail read too slowly\n", n)
			continue
		}
		ev := tailEvent(m.GetEvent())
		if *format == "json" {
			b, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			fmt.Fprintln(e.Stdout, string(b))
			continue
		}
		printPretty(e.Stdout, ev)
	}
	err = stream.Err()
	if ctx.Err() != nil {
		return nil // interrupted: the normal end
	}
	if err == nil {
		return errors.New("the tail ended: the server closed the stream (it may be shutting down); start it again")
	}
	return fmt.Errorf("the tail ended: %w", err)
}

// tailEvent turns a TailEvent into wrangler's tail JSON shape.
func tailEvent(p *deployv1.TailEvent) *tail.Event {
	ev := &tail.Event{
		ScriptName:        p.GetScriptName(),
		Environment:       p.GetEnvironment(),
		DispatchNamespace: p.GetDispatchNamespace(),
		Outcome:           p.GetOutcome(),
		EventTimestamp:    ms(p.GetEventTimestamp()),
		WallTime:          p.GetWallTimeMs(),
		CPUTime:           p.GetCpuTimeMs(),
		Logs:              []tail.Log{},
		Exceptions:        []tail.Exception{},
	}
	if p.GetVersion() != 0 {
		ev.ScriptVersion = &tail.ScriptVersion{ID: strconv.FormatInt(p.GetVersion(), 10)}
	}
	if r := p.GetRequest(); r != nil {
		ev.Event.Request = &tail.Request{URL: r.GetUrl(), Method: r.GetMethod(), Headers: r.GetHeaders()}
		if ev.Event.Request.Headers == nil {
			ev.Event.Request.Headers = map[string]string{}
		}
	}
	if s := p.GetResponseStatus(); s != 0 {
		ev.Event.Response = &tail.Response{Status: int(s)}
	}
	if p.GetScheduled() {
		ev.Event.Cron, ev.Event.ScheduledTime = p.GetCron(), ms(p.GetScheduledTime())
	}
	for _, l := range p.GetLogs() {
		var msg []json.RawMessage
		for _, v := range l.GetMessage().GetValues() {
			b, err := protojson.Marshal(v)
			if err != nil {
				b = []byte(`null`)
			}
			msg = append(msg, b)
		}
		if msg == nil {
			msg = []json.RawMessage{}
		}
		ev.Logs = append(ev.Logs, tail.Log{Message: msg, Level: l.GetLevel(), Timestamp: ms(l.GetTimestamp())})
	}
	for _, x := range p.GetExceptions() {
		ev.Exceptions = append(ev.Exceptions, tail.Exception{Name: x.GetName(), Message: x.GetMessage(), Stack: x.GetStack(), Timestamp: ms(x.GetTimestamp())})
	}
	return ev
}

func ms(ts *timestamppb.Timestamp) int64 {
	if ts == nil {
		return 0
	}
	return ts.AsTime().UnixMilli()
}

// printPretty prints an invocation for people, as wrangler's pretty format
// does: a line for the event, then its logs and exceptions.
func printPretty(w io.Writer, ev *tail.Event) {
	when := time.UnixMilli(ev.EventTimestamp).Format("2006-01-02 15:04:05")
	outcome := ev.Outcome
	if outcome == "" {
		outcome = "unknown"
	}
	switch {
	case ev.Event.Request != nil:
		status := ""
		if ev.Event.Response != nil {
			status = " " + strconv.Itoa(ev.Event.Response.Status)
		}
		fmt.Fprintf(w, "%s %s %s%s - %s\n", when, ev.Event.Request.Method, ev.Event.Request.URL, status, outcome)
	case ev.Event.Cron != "" || ev.Event.ScheduledTime != 0:
		cron := ev.Event.Cron
		if cron == "" {
			cron = "(by hand)"
		}
		fmt.Fprintf(w, "%s scheduled %s - %s\n", when, cron, outcome)
	default:
		fmt.Fprintf(w, "%s %s - %s\n", when, ev.ScriptName, outcome)
	}
	for _, l := range ev.Logs {
		fmt.Fprintf(w, "  (%s) %s\n", l.Level, l.Text())
	}
	for _, x := range ev.Exceptions {
		fmt.Fprintf(w, "  ✘ %s: %s\n", x.Name, x.Message)
		if x.Stack != "" {
			for _, line := range strings.Split(strings.TrimSpace(x.Stack), "\n") {
				fmt.Fprintf(w, "      %s\n", strings.TrimSpace(line))
			}
		}
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
