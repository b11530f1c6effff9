package deploy

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dot-do/platform/internal/config"
	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/internal/names"
	"github.com/dot-do/platform/services/deploy/backend"
)

// Limits of a deploy request, besides Config.MaxScriptBytes. They match the
// protovalidate rules of deploy.proto, so a request that passed those fails
// here only on what the protos cannot know (the configured environments,
// the size limit, reserved tags, duplicate module names).
const (
	// MaxModules bounds the modules of a worker.
	MaxModules = 100
	// MaxCompatibilityFlags bounds the compatibility flags.
	MaxCompatibilityFlags = 32
	// MaxUserTags bounds the caller's tags: a script carries at most 8 tags
	// on Cloudflare, and the platform adds two (see TagPrefix).
	MaxUserTags = 6
	// MaxLabels bounds the metadata labels.
	MaxLabels = 32
	// MaxIdempotencyKeyLen bounds an idempotency key.
	MaxIdempotencyKeyLen = 128
	// MaxReasonLen bounds a rollback reason.
	MaxReasonLen = 512
	// SingleModuleName is the module name of a worker sent as one script.
	SingleModuleName = "index.js"
)

// TagPrefix starts the tags the platform adds to every uploaded script,
// "dotdo-deployment=<id>" and "dotdo-version=<n>"; callers' tags may not
// start with it. The separator is "=" rather than ":" because Cloudflare's
// tag filter syntax ("?tags=name:yes") gives the last colon a meaning.
const TagPrefix = "dotdo-"

const (
	deploymentTagKey = TagPrefix + "deployment="
	versionTagKey    = TagPrefix + "version="
)

var (
	moduleNameRE = regexp.MustCompile(`^[A-Za-z0-9_.][A-Za-z0-9_./-]*$`)
	tagRE        = regexp.MustCompile(`^[A-Za-z0-9_:.=-]+$`)
)

func validDate(s string) bool {
	if len(s) != len("2006-01-02") {
		return false
	}
	_, err := time.Parse("2006-01-02", s)
	return err == nil
}

// Metadata says where a deployed script came from.
type Metadata struct {
	// Commit is the source revision, for example a git SHA.
	Commit string
	// Branch is the source branch or ref.
	Branch string
	// Author is who or what triggered the deploy.
	Author string
	// Labels are other key/value pairs kept with the deployment.
	Labels map[string]string
}

// DeployInput is a deploy request.
type DeployInput struct {
	// Service is the worker's name, as names.ValidService accepts it: 1 to
	// 63 lowercase letters, digits and dashes, not starting or ending with a
	// dash (stricter than Cloudflare's script names).
	Service string
	// Environment is one of the configured environments.
	Environment string
	// Script is a single-module worker, an ES module named "index.js". Set
	// either Script or Modules.
	Script []byte
	// Modules is a multi-module worker.
	Modules []backend.Module
	// MainModule names the module the worker runs; the first module when
	// empty.
	MainModule string
	// CompatibilityDate is the workerd compatibility date (YYYY-MM-DD); the
	// configured default when empty.
	CompatibilityDate string
	// CompatibilityFlags are workerd compatibility flags.
	CompatibilityFlags []string
	// Tags are extra tags of the uploaded script.
	Tags []string
	// Metadata says where the script came from.
	Metadata Metadata
	// IdempotencyKey, when set, makes a retry by the same API key return
	// the first deployment and upload nothing.
	IdempotencyKey string
	// Vars are plain-text environment variables of the worker.
	Vars map[string]string
	// Services are bindings to other workers of the environment.
	Services []ServiceBinding
	// Crons are cron triggers: 5-field cron expressions, UTC.
	Crons []string
	// Limits bound each invocation of the worker.
	Limits Limits
}

// RollbackInput is a rollback request.
type RollbackInput struct {
	// Service is the worker to roll back.
	Service string
	// Environment is the environment to roll back in.
	Environment string
	// Version is the version to restore; 0 restores the version that was
	// live before the current one.
	Version int64
	// Reason says why, for the audit log.
	Reason string
	// IdempotencyKey makes retries safe, as for DeployInput.
	IdempotencyKey string
}

// worker is a validated worker: what is stored as one bundle and uploaded.
type worker struct {
	MainModule         string
	Modules            []backend.Module // types resolved
	CompatibilityDate  string
	CompatibilityFlags []string
	Tags               []string
	Config             WorkerConfig // not part of the stored bundle
}

func (w worker) size() int64 {
	var n int64
	for _, m := range w.Modules {
		n += int64(len(m.Content))
	}
	return n
}

// script is the upload of w as name, with the platform's tags for
// deployment id and version added.
func (w worker) script(name, deploymentID string, version int64) backend.Script {
	tags := make([]string, 0, len(w.Tags)+2)
	tags = append(tags, w.Tags...)
	tags = append(tags, deploymentTag(deploymentID), fmt.Sprintf("%s%d", versionTagKey, version))
	s := backend.Script{
		Name:               name,
		MainModule:         w.MainModule,
		Modules:            w.Modules,
		CompatibilityDate:  w.CompatibilityDate,
		CompatibilityFlags: w.CompatibilityFlags,
		Tags:               tags,
	}
	w.Config.apply(&s)
	return s
}

func deploymentTag(id string) string { return deploymentTagKey + id }

// deploymentInTags returns the deployment id tags names, or "".
func deploymentInTags(tags []string) string {
	for _, t := range tags {
		if id, ok := strings.CutPrefix(t, deploymentTagKey); ok {
			return id
		}
	}
	return ""
}

// checkService validates a service name.
func checkService(s string) error {
	if !names.ValidService(s) {
		return invalid("service", "%q is not a valid worker name: use 1 to 63 lowercase letters, digits and dashes, not starting or ending with a dash", s)
	}
	return nil
}

// validateDeploy checks in against the rules and the configuration and
// returns the worker to store and upload. Nothing is recorded or uploaded
// for an input it refuses.
func (s *Service) validateDeploy(ctx context.Context, in DeployInput) (config.Environment, worker, error) {
	if err := checkService(in.Service); err != nil {
		return config.Environment{}, worker{}, err
	}
	env, err := s.environment("environment", in.Environment)
	if err != nil {
		return config.Environment{}, worker{}, err
	}
	w, err := s.buildWorker(in)
	if err != nil {
		return config.Environment{}, worker{}, err
	}
	if err := checkMetadata(in.Metadata); err != nil {
		return config.Environment{}, worker{}, err
	}
	if len(in.IdempotencyKey) > MaxIdempotencyKeyLen {
		return config.Environment{}, worker{}, invalid("idempotency_key", "longer than %d bytes", MaxIdempotencyKeyLen)
	}
	if w.Config, err = s.checkWorkerConfig(ctx, env.Name, in); err != nil {
		return config.Environment{}, worker{}, err
	}
	return env, w, nil
}

func (s *Service) buildWorker(in DeployInput) (worker, error) {
	w := worker{MainModule: in.MainModule, CompatibilityDate: in.CompatibilityDate}
	field := "modules"
	switch {
	case len(in.Script) > 0 && len(in.Modules) > 0:
		return worker{}, invalid("script", "set either script or modules, not both")
	case len(in.Script) > 0:
		field = "script"
		w.Modules = []backend.Module{{Name: SingleModuleName, Content: in.Script, Type: backend.ModuleESM}}
	case len(in.Modules) > 0:
		if len(in.Modules) > MaxModules {
			return worker{}, invalid("modules", "more than %d modules", MaxModules)
		}
		seen := make(map[string]bool, len(in.Modules))
		w.Modules = make([]backend.Module, len(in.Modules))
		for i, m := range in.Modules {
			f := fmt.Sprintf("modules[%d]", i)
			if err := checkModuleName(m.Name); err != nil {
				return worker{}, invalid(f+".name", "%v", err)
			}
			if seen[m.Name] {
				return worker{}, invalid(f+".name", "module %q appears twice", m.Name)
			}
			seen[m.Name] = true
			if m.Type < backend.ModuleInferred || m.Type > backend.ModuleJSON {
				return worker{}, invalid(f+".type", "unknown module type %d", int(m.Type))
			}
			w.Modules[i] = backend.Module{Name: m.Name, Content: m.Content, Type: m.Type.Resolve(m.Name)}
		}
	default:
		return worker{}, invalid("script", "the worker is empty: set script or modules")
	}
	if size := w.size(); size > s.cfg.MaxScriptBytes {
		return worker{}, &FieldError{Field: field, Kind: errkind.Exhausted,
			Reason: fmt.Sprintf("the worker is %d bytes, over the limit of %d bytes", size, s.cfg.MaxScriptBytes)}
	}
	if w.MainModule == "" {
		w.MainModule = w.Modules[0].Name
	}
	main := -1
	for i, m := range w.Modules {
		if m.Name == w.MainModule {
			main = i
		}
	}
	if main < 0 {
		return worker{}, invalid("main_module", "%q is not one of the modules", w.MainModule)
	}
	if w.Modules[main].Type != backend.ModuleESM {
		return worker{}, invalid("main_module", "%q is a %s module; the main module must be an ES module", w.MainModule, w.Modules[main].Type)
	}
	if w.CompatibilityDate == "" {
		w.CompatibilityDate = s.cfg.DefaultCompatibilityDate
	} else if !validDate(w.CompatibilityDate) {
		return worker{}, invalid("compatibility_date", "%q is not a date (YYYY-MM-DD)", w.CompatibilityDate)
	}
	flags, err := checkList("compatibility_flags", in.CompatibilityFlags, MaxCompatibilityFlags, 128, func(f string) string {
		if strings.IndexFunc(f, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) || r == ',' }) >= 0 {
			return "has a space, comma or unprintable character"
		}
		return ""
	})
	if err != nil {
		return worker{}, err
	}
	w.CompatibilityFlags = flags
	tags, err := checkList("tags", in.Tags, MaxUserTags, 64, func(t string) string {
		switch {
		case !tagRE.MatchString(t):
			return "may hold only letters, digits and _ : . = -"
		case strings.HasPrefix(t, TagPrefix):
			return fmt.Sprintf("starts with %q, which is reserved for the platform's tags", TagPrefix)
		}
		return ""
	})
	if err != nil {
		return worker{}, err
	}
	w.Tags = tags
	return w, nil
}

func checkModuleName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty module name")
	case len(name) > 256:
		return fmt.Errorf("module name longer than 256 bytes")
	case !moduleNameRE.MatchString(name):
		return fmt.Errorf("module name %q may hold only letters, digits and _ . / -", name)
	case strings.Contains(name, ".."):
		return fmt.Errorf("module name %q contains \"..\"", name)
	}
	return nil
}

// checkList validates a list of strings of at most max items of at most
// maxLen bytes each, with bad reporting what is wrong with one (or ""). It
// returns the list without duplicates, in its order.
func checkList(field string, items []string, max, maxLen int, bad func(string) string) ([]string, error) {
	if len(items) == 0 {
		return nil, nil
	}
	out := make([]string, 0, len(items))
	seen := make(map[string]bool, len(items))
	for i, it := range items {
		f := fmt.Sprintf("%s[%d]", field, i)
		if it == "" || len(it) > maxLen || !utf8.ValidString(it) {
			return nil, invalid(f, "must be 1 to %d bytes of UTF-8", maxLen)
		}
		if why := bad(it); why != "" {
			return nil, invalid(f, "%q %s", it, why)
		}
		if !seen[it] {
			seen[it] = true
			out = append(out, it)
		}
	}
	if len(out) > max {
		return nil, invalid(field, "more than %d distinct items", max)
	}
	return out, nil
}

func checkMetadata(m Metadata) error {
	for _, f := range []struct {
		name, value string
		max         int
	}{{"metadata.commit", m.Commit, 128}, {"metadata.branch", m.Branch, 256}, {"metadata.author", m.Author, 256}} {
		if len(f.value) > f.max || !utf8.ValidString(f.value) {
			return invalid(f.name, "must be at most %d bytes of UTF-8", f.max)
		}
	}
	if len(m.Labels) > MaxLabels {
		return invalid("metadata.labels", "more than %d labels", MaxLabels)
	}
	for k, v := range m.Labels {
		if k == "" || len(k) > 64 || len(v) > 256 || !utf8.ValidString(k) || !utf8.ValidString(v) {
			return invalid("metadata.labels", "label keys must be 1 to 64 bytes and values at most 256 bytes of UTF-8")
		}
	}
	return nil
}

// Keys of store.Deployment.Metadata. Labels are stored under labelPrefix so
// that a label cannot shadow a field.
const (
	metaCommit  = "commit"
	metaBranch  = "branch"
	metaAuthor  = "author"
	metaReason  = "reason"
	labelPrefix = "label:"
)

// storeMetadata flattens m into the map a store.Deployment keeps.
func (m Metadata) storeMetadata() map[string]string {
	out := make(map[string]string, len(m.Labels)+3)
	for k, v := range map[string]string{metaCommit: m.Commit, metaBranch: m.Branch, metaAuthor: m.Author} {
		if v != "" {
			out[k] = v
		}
	}
	for k, v := range m.Labels {
		out[labelPrefix+k] = v
	}
	return out
}

// MetadataOf reads back the Metadata that a deployment's stored map holds.
// Keys the platform adds (such as a rollback's "reason") come back as
// labels.
func MetadataOf(stored map[string]string) Metadata {
	var m Metadata
	for k, v := range stored {
		switch k {
		case metaCommit:
			m.Commit = v
		case metaBranch:
			m.Branch = v
		case metaAuthor:
			m.Author = v
		default:
			if m.Labels == nil {
				m.Labels = map[string]string{}
			}
			m.Labels[strings.TrimPrefix(k, labelPrefix)] = v
		}
	}
	return m
}

func joinQuoted(list []string) string {
	q := make([]string, len(list))
	for i, n := range list {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}
