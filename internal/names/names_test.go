package names_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/dot-do/platform/internal/names"
)

// rules lists each rule with names it accepts and names it refuses.
var rules = []struct {
	name   string
	valid  func(string) bool
	accept []string
	reject []string
}{
	{
		name:   "ValidScript",
		valid:  names.ValidScript,
		accept: []string{"a", "hello-world", "this-is_my_script-01", "_x", "0", "a-", "dotdo-production", strings.Repeat("a", 63)},
		reject: []string{"", "A", "A B", "../x", "..", ".", "a/b", "a.b", "-a", "a b", "é", strings.Repeat("a", 64), "a\x00"},
	},
	{
		name:   "ValidBinding",
		valid:  names.ValidBinding,
		accept: []string{"DB", "DB_PASSWORD", "apiKey", "_x", "$x", "A1", "my-var", strings.Repeat("K", 128)},
		reject: []string{"", "1A", "-A", "A B", "../K", "a.b", "a/b", "é", strings.Repeat("K", 129), "K\x00"},
	},
	{
		name:   "ValidIdentifier",
		valid:  names.ValidIdentifier,
		accept: []string{"DB", "GREETING", "apiKey", "_x", "$x", "A1", "MAX_$1", strings.Repeat("K", 64)},
		reject: []string{"", "1A", "-A", "my-var", "A B", "a.b", "a/b", "é", strings.Repeat("K", 65), "K\x00"},
	},
	{
		name:   "ValidSecretName",
		valid:  names.ValidSecretName,
		accept: []string{"WEBHOOK_TOKEN", "apiKey", "_x", "$x", "A1", "MAX_$1", strings.Repeat("K", 128)},
		reject: []string{"", "1ABC", "-A", "A-B", "A.B", "ÄB", "A B", "a/b", strings.Repeat("K", 129), "K\x00"},
	},
	{
		name:   "ValidService",
		valid:  names.ValidService,
		accept: []string{"a", "0", "gateway", "my-worker-2", "dotdo-production", strings.Repeat("a", 63)},
		reject: []string{"", "A", "Gateway", "-a", "a-", "a_b", "_x", "a.b", "a/b", "a b", "é", strings.Repeat("a", 64)},
	},
	{
		name:   "ValidEnvironment",
		valid:  names.ValidEnvironment,
		accept: []string{"production", "staging", "dev-2", "a", "x-", strings.Repeat("a", 32)},
		reject: []string{"", "0prod", "-prod", "Production", "prod_1", "prod.1", "a b", strings.Repeat("a", 33)},
	},
}

func TestRules(t *testing.T) {
	for _, r := range rules {
		for _, n := range r.accept {
			if !r.valid(n) {
				t.Errorf("%s(%q) = false, want true", r.name, n)
			}
		}
		for _, n := range r.reject {
			if r.valid(n) {
				t.Errorf("%s(%q) = true, want false", r.name, n)
			}
		}
	}
}

// TestServiceNamesAreScriptNames checks that the runtime serves every name
// the Deploy API accepts, while the two rules stay apart: the runtime also
// takes names the Deploy API refuses.
func TestServiceNamesAreScriptNames(t *testing.T) {
	for _, r := range rules {
		for _, n := range append(r.accept, r.reject...) {
			if names.ValidService(n) && !names.ValidScript(n) {
				t.Errorf("ValidService(%q) but not ValidScript", n)
			}
		}
	}
	for _, n := range []string{"a-", "a_b", "_x"} {
		if names.ValidService(n) || !names.ValidScript(n) {
			t.Errorf("%q: ValidService = %v, ValidScript = %v; want false, true", n, names.ValidService(n), names.ValidScript(n))
		}
	}
}

// TestValidServiceIsItsPattern compares ValidService with the pattern it
// implements, ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$ and at most 63 bytes, on
// every string of up to 5 bytes over a small alphabet, and at the bound.
func TestValidServiceIsItsPattern(t *testing.T) {
	pattern := regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	check := func(s string) {
		if want := len(s) <= names.MaxServiceLen && pattern.MatchString(s); names.ValidService(s) != want {
			t.Errorf("ValidService(%q) = %v, want %v", s, !want, want)
		}
	}
	const alphabet = "az09-_A.é"
	var walk func(prefix string)
	walk = func(prefix string) {
		check(prefix)
		if len(prefix) >= 5 {
			return
		}
		for i := 0; i < len(alphabet); i++ {
			walk(prefix + alphabet[i:i+1])
		}
	}
	walk("")
	check(strings.Repeat("a", 63))
	check(strings.Repeat("a", 64))
}

// TestEnvNameRules checks how the rules for keys of a worker's env nest:
// every var or binding name the Deploy API accepts is a secret name it
// accepts, and every secret name it accepts is one the runtime stores
// (ValidBinding); the runtime also takes names the Deploy API refuses.
func TestEnvNameRules(t *testing.T) {
	for _, r := range rules {
		for _, n := range append(r.accept, r.reject...) {
			if names.ValidIdentifier(n) && !names.ValidSecretName(n) {
				t.Errorf("ValidIdentifier(%q) but not ValidSecretName", n)
			}
			if names.ValidSecretName(n) && !names.ValidBinding(n) {
				t.Errorf("ValidSecretName(%q) but not ValidBinding", n)
			}
		}
	}
	for _, n := range []string{"my-var", "A-B"} {
		if names.ValidSecretName(n) || !names.ValidBinding(n) {
			t.Errorf("%q: ValidSecretName = %v, ValidBinding = %v; want false, true", n, names.ValidSecretName(n), names.ValidBinding(n))
		}
	}
}
