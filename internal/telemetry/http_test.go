package telemetry_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

// TestHTTPPropagation: dispatcher (public handler, instrumented transport)
// -> runtime (handler) is one trace that starts at the dispatcher, linked
// to, but not continuing, the outside caller's trace.
func TestHTTPPropagation(t *testing.T) {
	clearOTelEnv(t)
	rtTel, rtRec := newTelemetry(t, "runtime")
	dTel, dRec := newTelemetry(t, "dispatcher")

	runtimeSrv := httptest.NewServer(rtTel.HTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello from the worker") // the client checks what arrives
	}), "invoke"))
	defer runtimeSrv.Close()

	upstream := &http.Client{Transport: dTel.HTTPTransport(nil)}
	dispatcherSrv := httptest.NewServer(dTel.PublicHTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, runtimeSrv.URL+"/invoke/x", nil)
		res, err := upstream.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		_, _ = io.Copy(w, res.Body) // the client checks what arrives
	}), "dispatch"))
	defer dispatcherSrv.Close()

	const outsideTrace = "0af7651916cd43dd8448eb211c80319c"
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, dispatcherSrv.URL+"/", nil)
	req.Header.Set("Traceparent", "00-"+outsideTrace+"-b7ad6b7169203331-01")
	req.Host = "api.do"
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", res.StatusCode, body)
	}

	dServer := findSpan(t, dRec.Ended(), trace.SpanKindServer)
	dClient := findSpan(t, dRec.Ended(), trace.SpanKindClient)
	rServer := findSpan(t, rtRec.Ended(), trace.SpanKindServer)

	if dServer.SpanContext().TraceID().String() == outsideTrace || dServer.Parent().IsValid() {
		t.Errorf("the public handler continued the outside trace (parent %v)", dServer.Parent())
	}
	if links := dServer.Links(); len(links) != 1 || links[0].SpanContext.TraceID().String() != outsideTrace {
		t.Errorf("the public handler's span should link the outside trace: %v", links)
	}
	if dClient.Parent().SpanID() != dServer.SpanContext().SpanID() {
		t.Error("the dispatcher's client span is not a child of its server span")
	}
	if rServer.Parent().SpanID() != dClient.SpanContext().SpanID() || rServer.SpanContext().TraceID() != dServer.SpanContext().TraceID() {
		t.Error("the runtime's span does not continue the dispatcher's trace")
	}
	if serviceOf(rServer) != "dotdo-runtime" || serviceOf(dServer) != "dotdo-dispatcher" {
		t.Errorf("service names %q, %q", serviceOf(dServer), serviceOf(rServer))
	}

	// The data plane records no http.server metrics of its own (the
	// dispatcher and the runtime count requests themselves), so no client
	// can grow them; its span names the service, never the Host.
	f := scrape(t, dTel.MetricsHandler())
	if h := f["http_server_request_duration_seconds"]; h != nil {
		t.Errorf("the public handler records http_server_request_duration_seconds: %v", h)
	}
	for _, a := range dServer.Attributes() {
		if a.Key == "server.address" && a.Value.AsString() != "dotdo-dispatcher" {
			t.Errorf("server.address %q, want the service's name", a.Value.AsString())
		}
	}
}
