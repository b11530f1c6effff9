// Package cloudflare is the Backend on the Cloudflare API for Workers for
// Platforms dispatch namespaces, through cloudflare-go v6. The same code
// talks to Cloudflare and to the platform's local runtime, which serves the
// same API at another base URL.
//
// The API token is a secret: it is sent only in the Authorization header of
// requests to the configured base URL and never appears in an error, a log
// line or the String form of Config. Errors of cloudflare-go (which hold the
// request, headers included) are never returned or wrapped; they are turned
// into *backend.Error values with the token scrubbed from every message.
package cloudflare

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	cf "github.com/cloudflare/cloudflare-go/v6"
	"github.com/cloudflare/cloudflare-go/v6/option"
	"github.com/cloudflare/cloudflare-go/v6/workers"
	wfp "github.com/cloudflare/cloudflare-go/v6/workers_for_platforms"
	"github.com/cloudflare/cloudflare-go/v6/zones"

	"github.com/dot-do/platform/services/deploy/backend"
)

// Environment variables ConfigFromEnv reads.
const (
	// EnvAccountID holds the Cloudflare account id.
	EnvAccountID = "CLOUDFLARE_ACCOUNT_ID"
	// EnvAPIToken holds the API token shared by every namespace.
	EnvAPIToken = "CLOUDFLARE_API_TOKEN"
	// EnvBaseURL holds the API's base URL, for example
	// http://127.0.0.1:8790/client/v4 for the local runtime.
	EnvBaseURL = "CLOUDFLARE_API_BASE_URL"
	// EnvBackendName holds the name the backend reports (Config.Name).
	EnvBackendName = "DOTDO_BACKEND_NAME"
	// EnvTailConsumers holds the comma-separated names of the Workers that
	// consume the tail events of every uploaded script
	// (Config.TailConsumers), for example "dotdo-tail".
	EnvTailConsumers = "DOTDO_TAIL_CONSUMERS"
)

// Defaults of Config.
const (
	// DefaultBaseURL is Cloudflare's API.
	DefaultBaseURL = "https://api.cloudflare.com/client/v4/"
	// DefaultName is the backend's name when Config.Name is empty and the
	// base URL is Cloudflare's.
	DefaultName = "cloudflare"
	// RuntimeName is the backend's name when Config.Name is empty and the
	// base URL is not Cloudflare's: the platform's local runtime.
	RuntimeName = "runtime"
	// DefaultRequestTimeout bounds one attempt of one request.
	DefaultRequestTimeout = 60 * time.Second
	// DefaultMaxRetries is how often a request that failed with a network
	// error, 408, 429 or a 5xx is retried (with cloudflare-go's backoff).
	DefaultMaxRetries = 2
)

// Config configures the backend.
type Config struct {
	// AccountID is the Cloudflare account id (CLOUDFLARE_ACCOUNT_ID);
	// "local" for the local runtime.
	AccountID string
	// APIToken is the token used for every namespace without a token of its
	// own (CLOUDFLARE_API_TOKEN). It is a secret.
	APIToken string
	// NamespaceTokens maps a namespace to the token used for it instead of
	// APIToken (ConfigFromEnv fills it from CLOUDFLARE_API_TOKEN_<ENV>).
	// They are secrets.
	NamespaceTokens map[string]string
	// BaseURL is the API's base URL (CLOUDFLARE_API_BASE_URL);
	// DefaultBaseURL when empty.
	BaseURL string
	// Name is what Name returns (EnvBackendName). When empty it is
	// DefaultName for a base URL on cloudflare.com and RuntimeName for any
	// other (the local runtime).
	Name string
	// HTTPClient sends the requests; a client with dial and TLS timeouts
	// when nil.
	HTTPClient *http.Client
	// RequestTimeout bounds one attempt of one request;
	// DefaultRequestTimeout when zero.
	RequestTimeout time.Duration
	// MaxRetries is how often a failed request is retried;
	// DefaultMaxRetries when zero, none when negative.
	MaxRetries int
	// TailConsumers names the Workers (account-level scripts, outside the
	// dispatch namespaces) that receive the tail events of every script
	// Upload sends: its logs, exceptions and outcome per invocation
	// (EnvTailConsumers). Cloudflare delivers a user worker's events only
	// to the tail consumers attached to that worker itself, not to those
	// of the dispatch Worker, so each upload carries them.
	TailConsumers []string
}

// EnvTokenName returns the environment variable that holds the API token of
// environment, for example CLOUDFLARE_API_TOKEN_PRODUCTION for
// "production" (dashes become underscores).
func EnvTokenName(environment string) string {
	return EnvAPIToken + "_" + strings.ToUpper(strings.ReplaceAll(environment, "-", "_"))
}

// ConfigFromEnv reads a Config from environment variables through lookup
// (os.LookupEnv in production): EnvAccountID, EnvAPIToken, EnvBaseURL,
// EnvBackendName and, for each environment of namespaces (which maps an
// environment to its namespace), EnvTokenName(environment) as that
// namespace's token.
func ConfigFromEnv(lookup func(string) (string, bool), namespaces map[string]string) Config {
	get := func(k string) string { v, _ := lookup(k); return strings.TrimSpace(v) }
	c := Config{
		AccountID: get(EnvAccountID),
		APIToken:  get(EnvAPIToken),
		BaseURL:   get(EnvBaseURL),
		Name:      get(EnvBackendName),
	}
	for _, name := range strings.Split(get(EnvTailConsumers), ",") {
		if name = strings.TrimSpace(name); name != "" {
			c.TailConsumers = append(c.TailConsumers, name)
		}
	}
	for env, ns := range namespaces {
		if tok := get(EnvTokenName(env)); tok != "" {
			if c.NamespaceTokens == nil {
				c.NamespaceTokens = map[string]string{}
			}
			c.NamespaceTokens[ns] = tok
		}
	}
	return c
}

// String describes c without its tokens.
func (c Config) String() string {
	ns := make([]string, 0, len(c.NamespaceTokens))
	for n := range c.NamespaceTokens {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return fmt.Sprintf("cloudflare.Config{AccountID:%q BaseURL:%q Name:%q APIToken:%s NamespaceTokens:%v TailConsumers:%q}",
		c.AccountID, c.BaseURL, c.Name, redactedIf(c.APIToken != ""), ns, c.TailConsumers)
}

// GoString is String, so %#v does not print the tokens either.
func (c Config) GoString() string { return c.String() }

// LogValue implements slog.LogValuer without the tokens.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

func redactedIf(set bool) string {
	if set {
		return "[redacted]"
	}
	return `""`
}

// Backend is the backend.Backend on the Cloudflare API. It is safe for
// concurrent use.
type Backend struct {
	name      string
	accountID string
	token     string
	nsTokens  map[string]string
	namespace *wfp.DispatchNamespaceService
	scripts   *workers.ScriptService
	routes    *workers.RouteService
	zones     *zones.ZoneService
	client    *cf.Client
	scrub     *strings.Replacer
	tails     []workers.ConsumerScriptParam
	// runtime is set for the local runtime: service bindings are uploaded
	// as they are, and cron triggers and scheduled runs have endpoints.
	runtime bool
}

var _ backend.Backend = (*Backend)(nil)

// New returns a Backend for cfg. It needs an account id and a token (the
// shared one or one per namespace).
func New(cfg Config) (*Backend, error) {
	if cfg.AccountID == "" {
		return nil, fmt.Errorf("cloudflare backend: no account id (set %s)", EnvAccountID)
	}
	if cfg.APIToken == "" && len(cfg.NamespaceTokens) == 0 {
		return nil, fmt.Errorf("cloudflare backend: no API token (set %s)", EnvAPIToken)
	}
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("cloudflare backend: base URL %q is not an http(s) URL", base)
	}
	if u.User != nil {
		return nil, errors.New("cloudflare backend: base URL must not hold credentials")
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = defaultHTTPClient()
	}
	timeout := cfg.RequestTimeout
	if timeout <= 0 {
		timeout = DefaultRequestTimeout
	}
	retries := cfg.MaxRetries
	switch {
	case retries == 0:
		retries = DefaultMaxRetries
	case retries < 0:
		retries = 0
	}
	name := cfg.Name
	if name == "" {
		name = DefaultName
		if !strings.HasSuffix(u.Hostname(), "cloudflare.com") {
			name = RuntimeName
		}
	}
	var tails []workers.ConsumerScriptParam
	for _, name := range cfg.TailConsumers {
		if err := checkName("tail consumer", name); err != nil {
			return nil, fmt.Errorf("cloudflare backend: %w", err)
		}
		tails = append(tails, workers.ConsumerScriptParam{Service: cf.F(name)})
	}
	var secrets []string
	nsTokens := make(map[string]string, len(cfg.NamespaceTokens))
	for ns, tok := range cfg.NamespaceTokens {
		nsTokens[ns] = tok
		secrets = append(secrets, tok)
	}
	if cfg.APIToken != "" {
		secrets = append(secrets, cfg.APIToken)
	}
	opts := []option.RequestOption{
		option.WithBaseURL(base),
		option.WithHTTPClient(hc),
		option.WithRequestTimeout(timeout),
		option.WithMaxRetries(retries),
	}
	return &Backend{
		name:      name,
		accountID: cfg.AccountID,
		token:     cfg.APIToken,
		nsTokens:  nsTokens,
		namespace: wfp.NewDispatchNamespaceService(opts...),
		scripts:   workers.NewScriptService(opts...),
		routes:    workers.NewRouteService(opts...),
		zones:     zones.NewZoneService(opts...),
		client:    cf.NewClient(opts...),
		scrub:     newScrubber(secrets),
		tails:     tails,
		runtime:   name == RuntimeName,
	}, nil
}

func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = http.ProxyFromEnvironment
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.MaxIdleConnsPerHost = 16
	t.ResponseHeaderTimeout = 2 * time.Minute
	return &http.Client{Transport: t}
}

// newScrubber returns a replacer of every secret, and of its URL-escaped
// form, by "[redacted]".
func newScrubber(secrets []string) *strings.Replacer {
	var pairs []string
	seen := map[string]bool{}
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			pairs = append(pairs, s, "[redacted]")
		}
	}
	// Longer secrets first, so that one that contains another is replaced
	// whole.
	sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	for _, s := range secrets {
		add(s)
		add(url.QueryEscape(s))
		add(url.PathEscape(s))
	}
	return strings.NewReplacer(pairs...)
}

// Name implements backend.Backend.
func (b *Backend) Name() string { return b.name }

// opts returns the per-request options for namespace ("" for account-level
// calls): its token, and the capture of the raw response.
func (b *Backend) opts(namespace string, raw **http.Response) []option.RequestOption {
	tok := b.token
	if t, ok := b.nsTokens[namespace]; ok && namespace != "" {
		tok = t
	}
	if tok == "" {
		// Account-level call with only per-namespace tokens: use any of
		// them (they belong to the same account).
		for _, t := range b.nsTokens {
			tok = t
			break
		}
	}
	return []option.RequestOption{option.WithAPIToken(tok), option.WithResponseInto(raw)}
}

// NamespaceInfo implements backend.Backend.
func (b *Backend) NamespaceInfo(ctx context.Context, name string) (backend.Namespace, error) {
	if err := checkName("namespace", name); err != nil {
		return backend.Namespace{}, err
	}
	var raw *http.Response
	res, err := b.namespace.Get(ctx, name, wfp.DispatchNamespaceGetParams{AccountID: cf.F(b.accountID)}, b.opts(name, &raw)...)
	if err != nil {
		return backend.Namespace{}, b.fail("get namespace "+name, raw, err)
	}
	return backend.Namespace{Name: res.NamespaceName, ID: res.NamespaceID, ScriptCount: res.ScriptCount, CreatedOn: res.CreatedOn}, nil
}

// EnsureNamespace implements backend.Backend.
func (b *Backend) EnsureNamespace(ctx context.Context, name string) (bool, error) {
	_, err := b.NamespaceInfo(ctx, name)
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, backend.ErrNotFound) {
		return false, err
	}
	var raw *http.Response
	// A conflict means a concurrent caller created it: no retry, which
	// cloudflare-go would otherwise do on 409.
	opts := append(b.opts(name, &raw), option.WithMaxRetries(0))
	_, err = b.namespace.New(ctx, wfp.DispatchNamespaceNewParams{AccountID: cf.F(b.accountID), Name: cf.F(name)}, opts...)
	if err != nil {
		if raw != nil && raw.StatusCode == http.StatusConflict {
			return false, nil
		}
		return false, b.fail("create namespace "+name, raw, err)
	}
	return true, nil
}

// Upload implements backend.Backend. It sends one multipart request: a
// metadata part (main module, compatibility date and flags, tags, the vars
// and service bindings (see bindings), keep_bindings ["secret_text"] so the
// script keeps its secrets, the tail consumers of Config.TailConsumers) and
// one "files" part per module, named by the module's name and typed by its
// content type. On the local runtime it then sets the script's cron
// triggers (see setSchedules).
func (b *Backend) Upload(ctx context.Context, namespace string, s backend.Script) error {
	op := fmt.Sprintf("upload script %s to namespace %s", s.Name, namespace)
	if err := checkName("namespace", namespace); err != nil {
		return err
	}
	if err := checkName("script", s.Name); err != nil {
		return err
	}
	if len(s.Modules) == 0 {
		return &backend.Error{Op: op, Sentinel: backend.ErrRejected, Message: "no modules"}
	}
	main, modules, err := b.wrap(s)
	if err != nil {
		return &backend.Error{Op: op, Sentinel: backend.ErrRejected, Message: err.Error()}
	}
	meta := wfp.DispatchNamespaceScriptUpdateParamsMetadata{
		MainModule: cf.F(main),
		Tags:       cf.F(nonNil(s.Tags)),
		// The script's secrets (backend.Secrets) are bindings on
		// Cloudflare: keep them, or an upload would drop them.
		KeepBindings: cf.F(keepBindings),
	}
	if bs := b.bindings(namespace, s); len(bs) > 0 {
		meta.Bindings = cf.F(bs)
	}
	if s.CompatibilityDate != "" {
		meta.CompatibilityDate = cf.F(s.CompatibilityDate)
	}
	if len(s.CompatibilityFlags) > 0 {
		meta.CompatibilityFlags = cf.F(s.CompatibilityFlags)
	}
	if len(b.tails) > 0 {
		meta.TailConsumers = cf.F(b.tails)
	}
	if s.Limits.CPUMs > 0 {
		meta.Limits = cf.F(wfp.DispatchNamespaceScriptUpdateParamsMetadataLimits{CPUMs: cf.F(s.Limits.CPUMs)})
	}
	files := make([]io.Reader, len(modules))
	for i, m := range modules {
		files[i] = &part{Reader: bytes.NewReader(m.Content), name: m.Name, contentType: m.ContentType()}
	}
	var raw *http.Response
	_, err = b.namespace.Scripts.Update(ctx, namespace, s.Name, wfp.DispatchNamespaceScriptUpdateParams{
		AccountID: cf.F(b.accountID),
		Metadata:  cf.F(meta),
		Files:     cf.F(files),
	}, b.opts(namespace, &raw)...)
	if err != nil {
		return b.fail(op, raw, err)
	}
	return b.setSchedules(ctx, namespace, s)
}

// ScriptTags implements backend.Backend.
func (b *Backend) ScriptTags(ctx context.Context, namespace, script string) ([]string, error) {
	op := fmt.Sprintf("get tags of script %s in namespace %s", script, namespace)
	if err := checkName("namespace", namespace); err != nil {
		return nil, err
	}
	if err := checkName("script", script); err != nil {
		return nil, err
	}
	var raw *http.Response
	page, err := b.namespace.Scripts.Tags.List(ctx, namespace, script, wfp.DispatchNamespaceScriptTagListParams{AccountID: cf.F(b.accountID)}, b.opts(namespace, &raw)...)
	if err != nil {
		return nil, b.fail(op, raw, err)
	}
	return nonNil(page.Result), nil
}

// keepBindings are the binding types an upload keeps from the script's
// previous version: its secrets, set apart from deploys.
var keepBindings = []string{"secret_text"}

// part is a module in the multipart upload: cloudflare-go names the part's
// file and sets its content type from these methods.
type part struct {
	io.Reader
	name, contentType string
}

// Filename is the part's file name, the module's name.
func (p *part) Filename() string { return p.name }

// ContentType is the part's content type, the module's type.
func (p *part) ContentType() string { return p.contentType }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// checkName refuses names that would change the request path: a name goes
// into the URL path unescaped by cloudflare-go.
func checkName(what, name string) error {
	if name == "" || strings.ContainsAny(name, "/?#%\\ \t\r\n") || name == "." || name == ".." {
		return &backend.Error{Op: what + " " + strconv.Quote(name), Sentinel: backend.ErrRejected, Message: "invalid " + what + " name"}
	}
	return nil
}

// fail turns an error of cloudflare-go into a *backend.Error holding no
// secret: the status and the API's error codes and messages (scrubbed), or
// for a transport error its scrubbed text. The cloudflare-go error itself,
// which holds the request and its Authorization header, is dropped.
func (b *Backend) fail(op string, raw *http.Response, err error) error {
	e := &backend.Error{Op: op}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		e.Sentinel = backend.ErrUnavailable
		if errors.Is(err, context.Canceled) {
			e.Cause = context.Canceled
		} else {
			e.Cause = context.DeadlineExceeded
		}
		e.Message = "request " + e.Cause.Error()
		return e
	}
	var apiErr *cf.Error
	switch {
	case errors.As(err, &apiErr):
		e.Status = apiErr.StatusCode
		var msgs []string
		for _, d := range apiErr.Errors {
			msgs = append(msgs, fmt.Sprintf("%s (code %d)", d.Message, d.Code))
		}
		e.Message = strings.Join(msgs, "; ")
	case raw != nil && raw.StatusCode >= 400:
		// An error answer that is not Cloudflare's JSON envelope.
		e.Status = raw.StatusCode
		e.Message = "unexpected error answer"
	case raw != nil:
		e.Status = raw.StatusCode
		e.Message = "unreadable answer: " + errText(err)
	default:
		e.Message = errText(err)
	}
	e.Message = b.scrub.Replace(e.Message)
	e.Sentinel = kindOf(e.Status)
	return e
}

// errText is the text of a transport error without the request URL that
// *url.Error adds (the URL holds no secret, but it is noise).
func errText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

func kindOf(status int) error {
	switch {
	case status == 0, status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status >= 500:
		return backend.ErrUnavailable
	case status == http.StatusNotFound:
		return backend.ErrNotFound
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return backend.ErrUnauthorized
	default:
		return backend.ErrRejected
	}
}
