package telemetry

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// The platform's own instruments. Each is defined here once; the alert
// rules in ops/prometheus/alerts.yml use the Prometheus names in the
// comments (the OpenTelemetry name with dots turned into underscores, the
// unit appended as a suffix, counters ending in _total), and
// ops/prometheus/README.md documents them. Attribute values come from small
// fixed sets (the constants below, environment names from configuration,
// allow-listed worker names, HTTP status codes): never a raw host, path, key
// id or error message, which would make the series unbounded and could leak.
//
// The RPC metrics of every Connect service come from otelconnect (package
// rpc installs it): the histogram rpc.server.call.duration, exposed as
// rpc_server_call_duration_seconds{rpc_method, rpc_response_status_code,
// rpc_system_name} (and rpc_client_call_duration_seconds on the calling
// side). The Deploy API's error-rate alert is computed from it.
const (
	// MetricAuthAttempts counts authentications of API keys by the auth
	// service (Authenticate and Authorize), by outcome (AuthOutcome).
	// Prometheus: dotdo_auth_attempts_total{outcome}.
	MetricAuthAttempts = "dotdo.auth.attempts"

	// MetricDeployments counts deployments (deploys and rollbacks) that
	// reached a final state, by outcome (DeploymentOutcome: live, failed,
	// rejected), environment and kind (DeploymentKind: deploy, rollback).
	// Prometheus: dotdo_deployments_total{outcome, environment, kind}.
	MetricDeployments = "dotdo.deployments"

	// MetricDeploymentDuration is the time from the pending record to the
	// final state of a deployment, in seconds, with the attributes of
	// MetricDeployments.
	// Prometheus: dotdo_deployment_duration_seconds{outcome, environment, kind}.
	MetricDeploymentDuration = "dotdo.deployment.duration"

	// MetricDispatcherRequests counts the HTTP requests the dispatcher
	// answered, by worker (empty when no worker was resolved) and HTTP
	// status code.
	// Prometheus: dotdo_dispatcher_requests_total{worker, status}.
	MetricDispatcherRequests = "dotdo.dispatcher.requests"

	// MetricDispatcherRequestDuration is the time the dispatcher took to
	// answer, in seconds, by worker.
	// Prometheus: dotdo_dispatcher_request_duration_seconds{worker}.
	MetricDispatcherRequestDuration = "dotdo.dispatcher.request.duration"

	// MetricDispatcherWorkerNotFound counts requests that no routing rule
	// resolved to an allowed worker with a live version (the dispatcher's
	// 404 "worker not found").
	// Prometheus: dotdo_dispatcher_worker_not_found_total.
	MetricDispatcherWorkerNotFound = "dotdo.dispatcher.worker_not_found"

	// MetricDispatcherUpstreamErrors counts requests routed to a worker for
	// which the runtime gave no answer of the worker's own: the runtime
	// could not be reached, timed out, or answered 502/503 (its 500 for a
	// worker that threw is the worker's answer, not an upstream error).
	// Prometheus: dotdo_dispatcher_upstream_errors_total{worker}.
	MetricDispatcherUpstreamErrors = "dotdo.dispatcher.upstream_errors"
)

// Attribute keys of the platform's instruments (Prometheus label names).
const (
	AttrOutcome     = "outcome"
	AttrEnvironment = "environment"
	AttrKind        = "kind"
	AttrWorker      = "worker"
	AttrStatus      = "status"
)

// AuthOutcome is the outcome attribute of MetricAuthAttempts.
type AuthOutcome string

// Outcomes of an authentication.
const (
	// AuthSuccess: the key is valid and, for Authorize, has the permission.
	AuthSuccess AuthOutcome = "success"
	// AuthUnauthenticated: a missing, malformed, unknown, wrong, expired or
	// revoked key (errkind.Unauthenticated).
	AuthUnauthenticated AuthOutcome = "unauthenticated"
	// AuthPermissionDenied: a valid key without the permission or
	// environment (errkind.Permission).
	AuthPermissionDenied AuthOutcome = "permission_denied"
	// AuthThrottled: refused because the client made too many failed
	// attempts (errkind.Exhausted).
	AuthThrottled AuthOutcome = "throttled"
	// AuthError: the check could not be made (store unreachable, ...).
	AuthError AuthOutcome = "error"
)

// DeploymentOutcome is the outcome attribute of MetricDeployments.
type DeploymentOutcome string

// Final states of a deployment.
const (
	// DeploymentLive: uploaded and recorded live.
	DeploymentLive DeploymentOutcome = "live"
	// DeploymentFailed: recorded pending, then failed for a reason of the
	// platform's: the namespace backend unreachable, failing or refusing
	// the credential, the audit trail or the store failing. Alerts fire on
	// these.
	DeploymentFailed DeploymentOutcome = "failed"
	// DeploymentRejected: recorded pending, then failed because the
	// namespace backend refused the script itself (backend.ErrRejected: it
	// does not parse or throws at start-up). The deployer's fault, not the
	// platform's.
	DeploymentRejected DeploymentOutcome = "rejected"
)

// authOutcomes, deploymentOutcomes and deploymentKinds list every value,
// for InitSeries.
var (
	authOutcomes       = []AuthOutcome{AuthSuccess, AuthUnauthenticated, AuthPermissionDenied, AuthThrottled, AuthError}
	deploymentOutcomes = []DeploymentOutcome{DeploymentLive, DeploymentFailed, DeploymentRejected}
	deploymentKinds    = []DeploymentKind{KindDeploy, KindRollback}
)

// DeploymentKind is the kind attribute of MetricDeployments.
type DeploymentKind string

// Kinds of deployment.
const (
	// KindDeploy is a deploy of a new script.
	KindDeploy DeploymentKind = "deploy"
	// KindRollback re-uploads a stored earlier version.
	KindRollback DeploymentKind = "rollback"
)

// Histogram buckets, in seconds.
var (
	// deploymentBuckets spans a fast local upload to a slow Cloudflare one.
	deploymentBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}
	// requestBuckets spans a warm worker to a slow upstream.
	requestBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
)

// meterOrGlobal returns m, or the global meter provider's platform meter
// when m is nil.
func meterOrGlobal(m metric.Meter) metric.Meter {
	if m == nil {
		return otel.GetMeterProvider().Meter(InstrumentationName)
	}
	return m
}

// AuthMetrics are the auth service's instruments. A nil *AuthMetrics
// records nothing.
type AuthMetrics struct {
	// Attempts is MetricAuthAttempts.
	Attempts metric.Int64Counter
}

// NewAuthMetrics creates the auth service's instruments on m (the global
// meter provider when m is nil). Record an attempt in the auth service's
// Authenticate and Authorize handlers, once per call, with the outcome of
// the domain error.
func NewAuthMetrics(m metric.Meter) (*AuthMetrics, error) {
	m = meterOrGlobal(m)
	attempts, err := m.Int64Counter(MetricAuthAttempts,
		metric.WithUnit("{attempt}"),
		metric.WithDescription("Authentications of API keys, by outcome."))
	if err != nil {
		return nil, fmt.Errorf("telemetry: %s: %w", MetricAuthAttempts, err)
	}
	return &AuthMetrics{Attempts: attempts}, nil
}

// RecordAttempt counts one authentication.
func (a *AuthMetrics) RecordAttempt(ctx context.Context, outcome AuthOutcome) {
	if a == nil {
		return
	}
	a.Attempts.Add(ctx, 1, metric.WithAttributes(attribute.String(AttrOutcome, string(outcome))))
}

// InitSeries creates every outcome's series at zero, so that rate() and
// increase() see the first failure after start-up. Call it once after
// NewAuthMetrics.
func (a *AuthMetrics) InitSeries(ctx context.Context) {
	if a == nil {
		return
	}
	for _, o := range authOutcomes {
		a.Attempts.Add(ctx, 0, metric.WithAttributes(attribute.String(AttrOutcome, string(o))))
	}
}

// DeployMetrics are the deploy service's instruments. A nil *DeployMetrics
// records nothing.
type DeployMetrics struct {
	// Deployments is MetricDeployments.
	Deployments metric.Int64Counter
	// Duration is MetricDeploymentDuration.
	Duration metric.Float64Histogram
}

// NewDeployMetrics creates the deploy service's instruments on m (the
// global meter provider when m is nil). Record a deployment where the
// deploy path writes its final state (live, or failed: DeploymentRejected
// when the error wraps backend.ErrRejected, DeploymentFailed otherwise),
// for deploys and rollbacks alike, and in the reconciler when it resolves a
// pending row (elapsed -1).
func NewDeployMetrics(m metric.Meter) (*DeployMetrics, error) {
	m = meterOrGlobal(m)
	deployments, err := m.Int64Counter(MetricDeployments,
		metric.WithUnit("{deployment}"),
		metric.WithDescription("Deployments that reached a final state, by outcome, environment and kind."))
	if err != nil {
		return nil, fmt.Errorf("telemetry: %s: %w", MetricDeployments, err)
	}
	duration, err := m.Float64Histogram(MetricDeploymentDuration,
		metric.WithUnit("s"),
		metric.WithDescription("Time from the pending record to the final state of a deployment."),
		metric.WithExplicitBucketBoundaries(deploymentBuckets...))
	if err != nil {
		return nil, fmt.Errorf("telemetry: %s: %w", MetricDeploymentDuration, err)
	}
	return &DeployMetrics{Deployments: deployments, Duration: duration}, nil
}

// RecordDeployment counts one deployment that reached outcome in
// environment, and records how long it took (skipped when elapsed is
// negative, for a reconciled row whose start is unknown).
func (d *DeployMetrics) RecordDeployment(ctx context.Context, environment string, kind DeploymentKind, outcome DeploymentOutcome, elapsed time.Duration) {
	if d == nil {
		return
	}
	attrs := metric.WithAttributes(
		attribute.String(AttrOutcome, string(outcome)),
		attribute.String(AttrEnvironment, environment),
		attribute.String(AttrKind, string(kind)),
	)
	d.Deployments.Add(ctx, 1, attrs)
	if elapsed >= 0 {
		d.Duration.Record(ctx, elapsed.Seconds(), attrs)
	}
}

// InitSeries creates the deployment counter's series at zero for every
// outcome and kind in each of environments (the configured ones), so that
// increase() sees the first failure after start-up. Call it once after
// NewDeployMetrics.
func (d *DeployMetrics) InitSeries(ctx context.Context, environments ...string) {
	if d == nil {
		return
	}
	for _, env := range environments {
		for _, k := range deploymentKinds {
			for _, o := range deploymentOutcomes {
				d.Deployments.Add(ctx, 0, metric.WithAttributes(
					attribute.String(AttrOutcome, string(o)),
					attribute.String(AttrEnvironment, env),
					attribute.String(AttrKind, string(k)),
				))
			}
		}
	}
}

// DispatcherMetrics are the dispatcher's instruments. A nil
// *DispatcherMetrics records nothing.
type DispatcherMetrics struct {
	// Requests is MetricDispatcherRequests.
	Requests metric.Int64Counter
	// Duration is MetricDispatcherRequestDuration.
	Duration metric.Float64Histogram
	// WorkerNotFound is MetricDispatcherWorkerNotFound.
	WorkerNotFound metric.Int64Counter
	// UpstreamErrors is MetricDispatcherUpstreamErrors.
	UpstreamErrors metric.Int64Counter
}

// NewDispatcherMetrics creates the dispatcher's instruments on m (the
// global meter provider when m is nil). Record every answered request with
// RecordRequest (in the dispatcher's outermost HTTP handler, after the
// response is written), and in addition RecordWorkerNotFound when no rule
// routed it and RecordUpstreamError when the runtime failed it.
func NewDispatcherMetrics(m metric.Meter) (*DispatcherMetrics, error) {
	m = meterOrGlobal(m)
	requests, err := m.Int64Counter(MetricDispatcherRequests,
		metric.WithUnit("{request}"),
		metric.WithDescription("HTTP requests answered by the dispatcher, by worker and status code."))
	if err != nil {
		return nil, fmt.Errorf("telemetry: %s: %w", MetricDispatcherRequests, err)
	}
	duration, err := m.Float64Histogram(MetricDispatcherRequestDuration,
		metric.WithUnit("s"),
		metric.WithDescription("Time the dispatcher took to answer, by worker."),
		metric.WithExplicitBucketBoundaries(requestBuckets...))
	if err != nil {
		return nil, fmt.Errorf("telemetry: %s: %w", MetricDispatcherRequestDuration, err)
	}
	notFound, err := m.Int64Counter(MetricDispatcherWorkerNotFound,
		metric.WithUnit("{request}"),
		metric.WithDescription("Requests that no routing rule resolved to an allowed, live worker."))
	if err != nil {
		return nil, fmt.Errorf("telemetry: %s: %w", MetricDispatcherWorkerNotFound, err)
	}
	upstream, err := m.Int64Counter(MetricDispatcherUpstreamErrors,
		metric.WithUnit("{request}"),
		metric.WithDescription("Requests routed to a worker that the runtime failed (unreachable, timeout, 502, 503)."))
	if err != nil {
		return nil, fmt.Errorf("telemetry: %s: %w", MetricDispatcherUpstreamErrors, err)
	}
	return &DispatcherMetrics{Requests: requests, Duration: duration, WorkerNotFound: notFound, UpstreamErrors: upstream}, nil
}

// InitSeries creates the error counters' series at zero (the upstream
// errors for each of workers, the allow-listed ones), so that rate() sees
// the first error after start-up. Call it once after NewDispatcherMetrics.
func (d *DispatcherMetrics) InitSeries(ctx context.Context, workers ...string) {
	if d == nil {
		return
	}
	d.WorkerNotFound.Add(ctx, 0)
	for _, w := range workers {
		d.UpstreamErrors.Add(ctx, 0, metric.WithAttributes(attribute.String(AttrWorker, w)))
	}
}

// RecordRequest counts one answered request: worker is the resolved worker
// ("" when none was), status the HTTP status code sent.
func (d *DispatcherMetrics) RecordRequest(ctx context.Context, worker string, status int, elapsed time.Duration) {
	if d == nil {
		return
	}
	w := attribute.String(AttrWorker, worker)
	d.Requests.Add(ctx, 1, metric.WithAttributes(w, attribute.String(AttrStatus, strconv.Itoa(status))))
	d.Duration.Record(ctx, elapsed.Seconds(), metric.WithAttributes(w))
}

// RecordWorkerNotFound counts one request that no rule routed.
func (d *DispatcherMetrics) RecordWorkerNotFound(ctx context.Context) {
	if d == nil {
		return
	}
	d.WorkerNotFound.Add(ctx, 1)
}

// RecordUpstreamError counts one request to worker that the runtime failed.
func (d *DispatcherMetrics) RecordUpstreamError(ctx context.Context, worker string) {
	if d == nil {
		return
	}
	d.UpstreamErrors.Add(ctx, 1, metric.WithAttributes(attribute.String(AttrWorker, worker)))
}
