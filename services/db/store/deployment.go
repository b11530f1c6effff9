package store

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dot-do/platform/internal/errkind"
)

// Status is the lifecycle state of a deployment.
type Status string

// Deployment states. A deployment starts pending and becomes live or failed;
// a live deployment becomes superseded when another one goes live.
const (
	StatusPending    Status = "pending"
	StatusLive       Status = "live"
	StatusFailed     Status = "failed"
	StatusSuperseded Status = "superseded"
)

// Valid reports whether s is one of the defined states.
func (s Status) Valid() bool {
	switch s {
	case StatusPending, StatusLive, StatusFailed, StatusSuperseded:
		return true
	}
	return false
}

// Kind says whether a deployment ships a new script or restores an old one.
type Kind string

// Deployment kinds.
const (
	KindDeploy   Kind = "deploy"
	KindRollback Kind = "rollback"
)

// Limits enforced on deployment fields.
const (
	// MaxNameLen bounds service, environment, namespace and key ids.
	MaxNameLen = 255
	// MaxTags bounds the number of tags of a deployment.
	MaxTags = 64
	// MaxMetadataEntries bounds the number of metadata entries.
	MaxMetadataEntries = 64
	// MaxMetadataValueLen bounds tag and metadata value lengths.
	MaxMetadataValueLen = 4096
	// MaxConfigLen bounds a deployment's Config (JSON text).
	MaxConfigLen = 64 << 10
	// MaxErrorLen is the length beyond which an outcome error message is
	// truncated (never rejected: losing a failure because its message is
	// long would be worse).
	MaxErrorLen = 16 << 10
)

// Deployment is one attempt to put a version of a service live in an
// environment.
type Deployment struct {
	// ID is opaque and sortable by creation time: "dep_" + 26 characters.
	ID          string
	Service     string
	Environment string
	Namespace   string
	// Version counts deployments of (Environment, Service) from 1.
	Version int64
	Status  Status
	Kind    Kind
	// RestoredVersion is the version a rollback restores (0 otherwise).
	RestoredVersion int64
	// ScriptSHA256 is the lowercase hex SHA-256 of the script bundle (see
	// Blobs).
	ScriptSHA256      string
	ScriptSize        int64
	MainModule        string
	CompatibilityDate string
	Tags              []string
	// Metadata holds free-form context such as commit, branch or author.
	Metadata map[string]string
	// Config is the worker's configuration beside its script (vars,
	// service bindings, cron triggers) as a JSON object the deploy service
	// defines; "" when it has none. The store keeps it as it is.
	Config         string
	ActorKeyID     string
	ActorName      string
	IdempotencyKey string
	CreatedAt      time.Time
	// FinishedAt is when the deployment went live or failed; zero while
	// pending.
	FinishedAt time.Time
	// Error explains a failure.
	Error string
	// SupersededBy is the id of the deployment that replaced this one as
	// live.
	SupersededBy string
}

// NewDeployment is the input of BeginDeployment.
type NewDeployment struct {
	Service     string
	Environment string
	Namespace   string
	// Kind defaults to KindDeploy.
	Kind Kind
	// RestoredVersion is required for rollbacks and must be 0 otherwise.
	RestoredVersion int64
	// ScriptSHA256 is required (lowercase or uppercase hex), except for
	// rollbacks, which inherit it from the restored version when empty.
	ScriptSHA256      string
	ScriptSize        int64
	MainModule        string
	CompatibilityDate string
	Tags              []string
	Metadata          map[string]string
	// Config is the worker's configuration as a JSON object, or "" (see
	// Deployment.Config). A rollback that leaves it empty inherits the
	// restored version's.
	Config     string
	ActorKeyID string
	ActorName  string
	// IdempotencyKey makes BeginDeployment idempotent per ActorKeyID.
	IdempotencyKey string
}

// Normalize returns nd with defaults applied (Kind, lowercase ScriptSHA256,
// copies of Tags and Metadata) or an error wrapping errkind.Invalid.
func (nd NewDeployment) Normalize() (NewDeployment, error) {
	if err := checkName("service", nd.Service, true); err != nil {
		return nd, err
	}
	if err := checkName("environment", nd.Environment, true); err != nil {
		return nd, err
	}
	if err := checkName("namespace", nd.Namespace, false); err != nil {
		return nd, err
	}
	for _, f := range []struct{ name, v string }{
		{"main module", nd.MainModule}, {"compatibility date", nd.CompatibilityDate},
		{"actor key id", nd.ActorKeyID}, {"actor name", nd.ActorName}, {"idempotency key", nd.IdempotencyKey},
	} {
		if err := checkName(f.name, f.v, false); err != nil {
			return nd, err
		}
	}
	if nd.Kind == "" {
		nd.Kind = KindDeploy
	}
	switch nd.Kind {
	case KindDeploy:
		if nd.RestoredVersion != 0 {
			return nd, fmt.Errorf("restored version %d on a deploy: %w", nd.RestoredVersion, errkind.Invalid)
		}
	case KindRollback:
		if nd.RestoredVersion <= 0 {
			return nd, fmt.Errorf("rollback without a restored version: %w", errkind.Invalid)
		}
	default:
		return nd, fmt.Errorf("unknown deployment kind %q: %w", nd.Kind, errkind.Invalid)
	}
	nd.ScriptSHA256 = strings.ToLower(nd.ScriptSHA256)
	if nd.ScriptSHA256 != "" || nd.Kind == KindDeploy {
		if !ValidSHA256(nd.ScriptSHA256) {
			return nd, fmt.Errorf("script sha256 %q is not 64 hex digits: %w", nd.ScriptSHA256, errkind.Invalid)
		}
	}
	if nd.ScriptSize < 0 {
		return nd, fmt.Errorf("negative script size: %w", errkind.Invalid)
	}
	if len(nd.Tags) > MaxTags {
		return nd, fmt.Errorf("%d tags, more than %d: %w", len(nd.Tags), MaxTags, errkind.Invalid)
	}
	if nd.Tags != nil {
		tags := make([]string, len(nd.Tags))
		for i, t := range nd.Tags {
			if t == "" || len(t) > MaxMetadataValueLen || !utf8.ValidString(t) {
				return nd, fmt.Errorf("tag %d is empty, too long or not UTF-8: %w", i, errkind.Invalid)
			}
			tags[i] = t
		}
		nd.Tags = tags
	}
	if len(nd.Config) > MaxConfigLen {
		return nd, fmt.Errorf("config of %d bytes, more than %d: %w", len(nd.Config), MaxConfigLen, errkind.Invalid)
	}
	if nd.Config != "" && (!json.Valid([]byte(nd.Config)) || !strings.HasPrefix(strings.TrimSpace(nd.Config), "{")) {
		return nd, fmt.Errorf("config is not a JSON object: %w", errkind.Invalid)
	}
	if len(nd.Metadata) > MaxMetadataEntries {
		return nd, fmt.Errorf("%d metadata entries, more than %d: %w", len(nd.Metadata), MaxMetadataEntries, errkind.Invalid)
	}
	if nd.Metadata != nil {
		md := make(map[string]string, len(nd.Metadata))
		for k, v := range nd.Metadata {
			if err := checkName("metadata key", k, true); err != nil {
				return nd, err
			}
			if len(v) > MaxMetadataValueLen || !utf8.ValidString(v) {
				return nd, fmt.Errorf("metadata %q: value too long or not UTF-8: %w", k, errkind.Invalid)
			}
			md[k] = v
		}
		nd.Metadata = md
	}
	return nd, nil
}

// Outcome is how a pending deployment ended.
type Outcome struct {
	// Status is StatusLive or StatusFailed.
	Status Status
	// Error explains a failure; it must be empty when Status is live and is
	// truncated to MaxErrorLen bytes.
	Error string
	// Lease, when set, fences the completion by the deploy lease of the
	// deployment's service (see Deployments.CompleteDeployment).
	Lease *LeaseFence
}

// LeaseFence names a holding of a lease: the holder and the Token the lease
// had when that holder took it. A later holder gets a higher token, so a
// holder that lost its lease cannot present a current fence.
type LeaseFence struct {
	Holder string
	Token  int64
}

// Normalize validates o and truncates its Error, returning an error wrapping
// errkind.Invalid when o is not a legal outcome.
func (o Outcome) Normalize() (Outcome, error) {
	switch o.Status {
	case StatusLive:
		if o.Error != "" {
			return o, fmt.Errorf("live outcome with an error message: %w", errkind.Invalid)
		}
	case StatusFailed:
		o.Error = truncateUTF8(o.Error, MaxErrorLen)
	default:
		return o, fmt.Errorf("outcome status %q is not live or failed: %w", o.Status, errkind.Invalid)
	}
	return o, nil
}

// ListFilter selects deployments for ListDeployments. Empty fields match
// everything.
type ListFilter struct {
	Service     string
	Environment string
	Status      Status
	// PageSize defaults to DefaultPageSize and is capped at MaxPageSize.
	PageSize int
	// PageToken is the nextPageToken of the previous page of the same
	// filter; a token from another filter returns errkind.Invalid.
	PageToken string
}

// Page is a page request of ListPending.
type Page struct {
	// PageSize defaults to DefaultPageSize and is capped at MaxPageSize.
	PageSize int
	// PageToken is the nextPageToken of the previous page.
	PageToken string
}

// Page sizes of the List methods.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// PageSize returns the effective page size for a requested one: the
// default when n <= 0, MaxPageSize when n is larger.
func PageSize(n int) int {
	switch {
	case n <= 0:
		return DefaultPageSize
	case n > MaxPageSize:
		return MaxPageSize
	}
	return n
}

func checkName(what, v string, required bool) error {
	if v == "" {
		if required {
			return fmt.Errorf("%s is required: %w", what, errkind.Invalid)
		}
		return nil
	}
	if len(v) > MaxNameLen || !utf8.ValidString(v) {
		return fmt.Errorf("%s is longer than %d bytes or not UTF-8: %w", what, MaxNameLen, errkind.Invalid)
	}
	return nil
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
