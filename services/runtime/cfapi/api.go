package cfapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/dot-do/platform/services/runtime/scripts"
)

// Prefix is the path prefix of the API.
const Prefix = "/client/v4/"

// DefaultMaxScriptBytes is the default bound on the total size of a
// script's modules (10 MiB, Cloudflare's paid-plan limit).
const DefaultMaxScriptBytes = 10 << 20

// DefaultCompatibilityDate is used for uploads without compatibility_date.
const DefaultCompatibilityDate = "2025-01-01"

const (
	maxJSONBody     = 1 << 20
	maxMetadataSize = 1 << 20
)

// StartupChecker starts an uploaded version before it is stored. An error
// wrapping a *ScriptError rejects the upload with a 400; any other error
// answers 503 and nothing is stored.
type StartupChecker interface {
	CheckStartup(ctx context.Context, namespace, script string, d *scripts.Draft, secrets map[string]string) (time.Duration, error)
}

// ScriptError is a start-up failure of an uploaded script; Message reaches
// the uploader.
type ScriptError struct {
	// Message is workerd's description of the failure.
	Message string
}

// Error returns the message.
func (e *ScriptError) Error() string { return e.Message }

// Config configures the API handler.
type Config struct {
	// AccountID is the only account id served; others get 403.
	AccountID string
	// APIToken is the bearer token every request must carry. Required.
	APIToken string
	// MaxScriptBytes bounds the total size of a version's modules.
	MaxScriptBytes int64
	// DefaultCompatibilityDate applies when an upload names none.
	DefaultCompatibilityDate string
	// Store holds the data. Required.
	Store *scripts.Store
	// Checker, when set, start-checks every upload before it is stored.
	Checker StartupChecker
	// OnNamespaceDeleted, when set, is called after a namespace is deleted.
	OnNamespaceDeleted func(namespace string)
	// OnScriptDeleted, when set, is called after a script is deleted (by
	// name or by a tags filter).
	OnScriptDeleted func(namespace, script string)
	// OnVersion, when set, is called after a script's new version is
	// stored (to start it before its first request).
	OnVersion func(s scripts.Script)
	// Scheduler, when set, runs scheduled handlers for
	// POST .../scripts/{s}/scheduled.
	Scheduler Scheduler
	// Logger receives one line per request (never a token or secret).
	Logger *slog.Logger
}

// API is the http.Handler of the Cloudflare API subset.
type API struct {
	cfg       Config
	log       *slog.Logger
	tokenHash [32]byte
	account   account // account scripts and Workers routes (account.go)
}

// New returns the API handler.
func New(cfg Config) (*API, error) {
	if cfg.APIToken == "" {
		return nil, errors.New("cfapi: APIToken is required")
	}
	if cfg.Store == nil {
		return nil, errors.New("cfapi: Store is required")
	}
	if cfg.AccountID == "" {
		return nil, errors.New("cfapi: AccountID is required")
	}
	if cfg.MaxScriptBytes <= 0 {
		cfg.MaxScriptBytes = DefaultMaxScriptBytes
	}
	if cfg.DefaultCompatibilityDate == "" {
		cfg.DefaultCompatibilityDate = DefaultCompatibilityDate
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &API{cfg: cfg, log: cfg.Logger, tokenHash: sha256.Sum256([]byte(cfg.APIToken))}, nil
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ServeHTTP serves the API.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	route := a.serve(sw, r)
	level := slog.LevelDebug
	if r.Method != http.MethodGet || sw.status >= 400 {
		level = slog.LevelInfo
	}
	a.log.Log(r.Context(), level, "runtime api", "method", r.Method, "route", route, "status", sw.status,
		"duration", time.Since(start).Round(time.Microsecond))
}

// serve handles the request and returns a route label for the log.
func (a *API) serve(w http.ResponseWriter, r *http.Request) string {
	if err := a.authenticate(r); err != nil {
		writeError(w, err)
		return "unauthenticated"
	}
	segs, ok := splitPath(r.URL.EscapedPath())
	if ok && len(segs) > 0 && segs[0] == "zones" {
		route, err := a.serveZones(w, r, segs[1:])
		if err != nil {
			writeError(w, err)
		}
		return route
	}
	if !ok || len(segs) < 2 || segs[0] != "accounts" {
		writeError(w, errf(http.StatusNotFound, CodeNoRoute, "No route for the URI"))
		return "no route"
	}
	if segs[1] != a.cfg.AccountID {
		writeError(w, errf(http.StatusForbidden, CodeAuthError, "Authentication error"))
		return "foreign account"
	}
	segs = segs[2:]
	if len(segs) == 3 && segs[0] == "workers" && segs[1] == "scripts" {
		if r.Method != http.MethodPut {
			writeError(w, errf(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "Method not allowed for this endpoint"))
			return r.Method + " account script"
		}
		if err := a.uploadAccountScript(w, r, segs[2]); err != nil {
			writeError(w, err)
		}
		return "PUT account script"
	}
	if len(segs) == 4 && segs[0] == "workers" && segs[1] == "scripts" && segs[3] == "schedules" {
		return a.serveAccountSchedules(w, r, segs[2])
	}
	if len(segs) < 3 || segs[0] != "workers" || segs[1] != "dispatch" || segs[2] != "namespaces" {
		writeError(w, errf(http.StatusNotFound, CodeNoRoute, "No route for the URI"))
		return "no route"
	}
	segs = segs[3:]
	h, route := a.route(r.Method, segs)
	if h == nil {
		writeError(w, errf(http.StatusNotFound, CodeNoRoute, "No route for the URI"))
		return "no route"
	}
	if err := h(w, r, segs); err != nil {
		writeError(w, err)
	}
	return route
}

func (a *API) authenticate(r *http.Request) *apiError {
	h := r.Header.Get("Authorization")
	if h == "" {
		return errf(http.StatusBadRequest, CodeAuthMissing, "Missing X-Auth-Key, X-Auth-Email or Authorization headers")
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return errf(http.StatusBadRequest, CodeAuthFormat, "Invalid format for Authorization header")
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	if subtle.ConstantTimeCompare(got[:], a.tokenHash[:]) != 1 {
		return errf(http.StatusForbidden, CodeAuthInvalid, "Invalid access token")
	}
	return nil
}
