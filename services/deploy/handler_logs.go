package deploy

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	deployv1 "github.com/dot-do/platform/gen/go/dotdo/deploy/v1"
	"github.com/dot-do/platform/gen/go/dotdo/deploy/v1/deployv1connect"
	"github.com/dot-do/platform/internal/tail"
)

// NewLogHandler returns the LogService handler over logs.
func NewLogHandler(logs *Logs) deployv1connect.LogServiceHandler { return &logHandler{logs: logs} }

type logHandler struct{ logs *Logs }

var _ deployv1connect.LogServiceHandler = (*logHandler)(nil)

// TailWorker implements deployv1connect.LogServiceHandler.
func (h *logHandler) TailWorker(ctx context.Context, req *connect.Request[deployv1.TailWorkerRequest], stream *connect.ServerStream[deployv1.TailWorkerResponse]) error {
	m := req.Msg
	in := TailInput{
		Service:     m.GetService(),
		Environment: m.GetEnvironment(),
		Filter: tail.Filter{Status: m.GetStatus(), Methods: m.GetMethod(), Search: m.GetSearch(),
			SamplingRate: m.GetSamplingRate()},
	}
	return h.logs.Tail(ctx, callerOf(req), in, func(it TailItem) error {
		if it.Started {
			return stream.Send(&deployv1.TailWorkerResponse{Message: &deployv1.TailWorkerResponse_Started{
				Started: &deployv1.TailStarted{ExpiresAt: timestamppb.New(it.ExpiresAt)}}})
		}
		if it.Event == nil {
			return stream.Send(&deployv1.TailWorkerResponse{Message: &deployv1.TailWorkerResponse_Dropped{Dropped: it.Dropped}})
		}
		return stream.Send(&deployv1.TailWorkerResponse{Message: &deployv1.TailWorkerResponse_Event{Event: TailEventProto(it.Event)}})
	})
}

// TailEventProto converts a tail event.
func TailEventProto(e *tail.Event) *deployv1.TailEvent {
	out := &deployv1.TailEvent{
		ScriptName:        e.ScriptName,
		Environment:       e.Environment,
		DispatchNamespace: e.DispatchNamespace,
		Outcome:           e.Outcome,
		EventTimestamp:    millis(e.EventTimestamp),
		WallTimeMs:        e.WallTime,
		CpuTimeMs:         e.CPUTime,
	}
	if e.ScriptVersion != nil {
		out.Version, _ = strconv.ParseInt(e.ScriptVersion.ID, 10, 64)
	}
	if r := e.Event.Request; r != nil {
		out.Request = &deployv1.TailRequest{Url: r.URL, Method: r.Method, Headers: r.Headers}
	}
	if e.Event.Response != nil {
		out.ResponseStatus = int32(e.Event.Response.Status)
	}
	if e.Event.Request == nil && (e.Event.Cron != "" || e.Event.ScheduledTime != 0) {
		out.Scheduled, out.Cron, out.ScheduledTime = true, e.Event.Cron, millis(e.Event.ScheduledTime)
	}
	for _, l := range e.Logs {
		vals := make([]*structpb.Value, 0, len(l.Message))
		for _, raw := range l.Message {
			var v any
			if json.Unmarshal(raw, &v) != nil {
				v = string(raw)
			}
			pv, err := structpb.NewValue(v)
			if err != nil {
				pv = structpb.NewStringValue(string(raw))
			}
			vals = append(vals, pv)
		}
		out.Logs = append(out.Logs, &deployv1.TailLog{Level: l.Level, Message: &structpb.ListValue{Values: vals}, Timestamp: millis(l.Timestamp)})
	}
	for _, x := range e.Exceptions {
		out.Exceptions = append(out.Exceptions, &deployv1.TailException{Name: x.Name, Message: x.Message, Stack: x.Stack, Timestamp: millis(x.Timestamp)})
	}
	return out
}

func millis(ms int64) *timestamppb.Timestamp {
	if ms == 0 {
		return nil
	}
	return timestamppb.New(time.UnixMilli(ms))
}
