package scripts

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dot-do/platform/internal/names"
)

// MaxCompatibilityFlags bounds the number of compatibility flags.
const MaxCompatibilityFlags = 64

// MaxBindings bounds the number of bindings of a version.
const MaxBindings = 256

// ModuleTypeFor maps an uploaded part's content type (and, for untyped
// parts, its file extension) to the way workerd loads it. It returns false
// for content types the local runtime cannot load (for example Python).
func ModuleTypeFor(contentType, name string) (ModuleType, bool) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(contentType))
	}
	switch mt {
	case "application/javascript+module", "text/javascript+module":
		return ModuleESM, true
	case "application/javascript", "text/javascript":
		// Cloudflare treats plain JavaScript parts of a module upload as
		// CommonJS; a main module of that type is treated as an ES module
		// (see ValidateDraft) because that is what bundlers emit.
		return ModuleCommonJS, true
	case "text/plain", "text/html", "text/css", "text/markdown":
		return ModuleText, true
	case "application/json":
		return ModuleJSON, true
	case "application/wasm":
		return ModuleWasm, true
	case "application/source-map":
		return ModuleSourceMap, true
	case "", "application/octet-stream":
		switch strings.ToLower(path.Ext(name)) {
		case ".js", ".mjs":
			return ModuleESM, true
		case ".cjs":
			return ModuleCommonJS, true
		case ".wasm":
			return ModuleWasm, true
		case ".json":
			return ModuleJSON, true
		case ".txt", ".html", ".css", ".md":
			return ModuleText, true
		case ".map":
			return ModuleSourceMap, true
		}
		return ModuleData, true
	}
	return "", false
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// ValidateDraft checks a draft and normalizes it in place (a main module
// uploaded as application/javascript becomes an ES module, tags are
// deduplicated). Every error wraps ErrInvalid and its message is safe to
// return to the client: it never contains binding or secret values.
func ValidateDraft(d *Draft) error {
	if len(d.Modules) == 0 {
		return invalidf("no modules were uploaded")
	}
	if d.MainModule == "" {
		return invalidf("metadata.main_module is required")
	}
	if d.Limits.CPUMs < 0 || d.Limits.CPUMs > MaxCPUMs {
		return invalidf("metadata.limits.cpu_ms must be between 1 and %d", MaxCPUMs)
	}
	seen := make(map[string]bool, len(d.Modules))
	mainIdx := -1
	for i := range d.Modules {
		m := &d.Modules[i]
		if !ValidModuleName(m.Name) {
			return invalidf("module %d has an invalid name", i)
		}
		if seen[m.Name] {
			return invalidf("module %q was uploaded twice", m.Name)
		}
		seen[m.Name] = true
		if m.Type == "" {
			t, ok := ModuleTypeFor(m.ContentType, m.Name)
			if !ok {
				return invalidf("module %q has unsupported content type %q", m.Name, m.ContentType)
			}
			m.Type = t
		}
		switch m.Type {
		case ModuleESM, ModuleCommonJS, ModuleText, ModuleSourceMap:
			if !utf8.Valid(m.Content) {
				return invalidf("module %q is not valid UTF-8", m.Name)
			}
		case ModuleJSON:
			if !json.Valid(m.Content) {
				return invalidf("module %q is not valid JSON", m.Name)
			}
		case ModuleData, ModuleWasm:
		default:
			return invalidf("module %q has unknown type %q", m.Name, m.Type)
		}
		if m.Name == d.MainModule {
			mainIdx = i
		}
	}
	if mainIdx < 0 {
		return invalidf("main_module %q is not among the uploaded files", d.MainModule)
	}
	switch d.Modules[mainIdx].Type {
	case ModuleESM:
	case ModuleCommonJS:
		d.Modules[mainIdx].Type = ModuleESM
	default:
		return invalidf("main_module %q must be a JavaScript module", d.MainModule)
	}
	if d.CompatibilityDate != "" {
		if _, err := time.Parse(time.DateOnly, d.CompatibilityDate); err != nil {
			return invalidf("compatibility_date must be YYYY-MM-DD")
		}
	}
	if len(d.CompatibilityFlags) > MaxCompatibilityFlags {
		return invalidf("too many compatibility_flags")
	}
	for _, f := range d.CompatibilityFlags {
		if f == "" || len(f) > 128 || strings.ContainsFunc(f, func(r rune) bool { return r != '_' && r != '-' && (r < 'a' || r > 'z') && (r < '0' || r > '9') }) {
			return invalidf("invalid compatibility flag")
		}
	}
	if len(d.Bindings) > MaxBindings {
		return invalidf("too many bindings")
	}
	bound := make(map[string]bool, len(d.Bindings))
	for i, b := range d.Bindings {
		if !names.ValidBinding(b.Name) {
			return invalidf("binding %d has an invalid name", i)
		}
		if bound[b.Name] {
			return invalidf("binding %q is defined twice", b.Name)
		}
		bound[b.Name] = true
		switch b.Type {
		case BindingPlainText, BindingSecretText:
			if b.JSON != nil {
				return invalidf("binding %q: %s takes text, not json", b.Name, b.Type)
			}
		case BindingJSON:
			if b.JSON == nil || !json.Valid(b.JSON) {
				return invalidf("binding %q: json binding needs a valid json value", b.Name)
			}
		case BindingService:
			if !names.ValidScript(b.Service) || b.Text != "" || b.JSON != nil {
				return invalidf("binding %q: a service binding needs the name of a script of the namespace in service", b.Name)
			}
		default:
			return invalidf("binding %q has type %q, which the local runtime does not support (supported: plain_text, json, secret_text, service)", b.Name, b.Type)
		}
	}
	if d.Tags != nil {
		tags, err := ValidateTags(d.Tags)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		d.Tags = tags
	}
	return nil
}

// Etag returns a hex SHA-256 over a version's configuration and module
// contents. Values of secret_text bindings are left out so that the tag
// reveals nothing about them.
func Etag(info VersionInfo, contents [][]byte) string {
	h := sha256.New()
	var n [8]byte
	write := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	write([]byte(info.MainModule))
	write([]byte(info.CompatibilityDate))
	for _, f := range info.CompatibilityFlags {
		write([]byte(f))
	}
	for _, b := range info.Bindings {
		write([]byte(b.Name))
		write([]byte(b.Type))
		if b.Type != BindingSecretText {
			write([]byte(b.Text))
			write(b.JSON)
			write([]byte(b.Service))
		}
	}
	for i, m := range info.Modules {
		write([]byte(m.Name))
		write([]byte(m.Type))
		write(contents[i])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// VersionTag starts the script tag with which an upload pins its version
// number, as in "dotdo-version=7".
const VersionTag = "dotdo-version="

// PinnedVersion returns the version number pinned by a VersionTag among
// tags, if any.
func PinnedVersion(tags []string) (int64, bool) {
	for _, t := range tags {
		if v, ok := strings.CutPrefix(t, VersionTag); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err == nil && n > 0 {
				return n, true
			}
		}
	}
	return 0, false
}

// MaxModuleNameLength is the longest module (file) name accepted.
const MaxModuleNameLength = 256

// ValidModuleName reports whether name is acceptable as a module name: a
// relative slash-separated path of printable characters without empty, "."
// or ".." segments. Modules are stored by index, never by name, so this
// guards the module graph inside workerd rather than the file system.
func ValidModuleName(name string) bool {
	if name == "" || len(name) > MaxModuleNameLength || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if r == '\\' || !unicode.IsPrint(r) {
			return false
		}
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}
