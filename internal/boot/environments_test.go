package boot

import (
	"strings"
	"testing"
)

// TestEnvironmentsFlag: -environments (DOTDO_ENVIRONMENTS) is one flag of
// deploy and the dispatcher, so `dotdo dev -environments ...` gives both
// the same list, and the dispatcher's namespace comes from it.
func TestEnvironmentsFlag(t *testing.T) {
	t.Setenv("DOTDO_ENVIRONMENTS", "")
	var d DevConfig
	if err := d.Parse([]string{"-environments", "production=edge-prod,preview"}); err != nil {
		t.Fatal(err)
	}
	if d.Deploy.Environments != d.Dispatcher.Environments || d.Dispatcher.Environments != "production=edge-prod,preview" {
		t.Fatalf("deploy %q, dispatcher %q", d.Deploy.Environments, d.Dispatcher.Environments)
	}
	if ns, err := d.Dispatcher.namespace(); err != nil || ns != "edge-prod" {
		t.Fatalf("namespace() = %q, %v; want edge-prod", ns, err)
	}
	d.Dispatcher.Environment = "preview"
	if ns, err := d.Dispatcher.namespace(); err != nil || ns != "dotdo-preview" {
		t.Fatalf("namespace() of preview = %q, %v", ns, err)
	}
	d.Dispatcher.Environment = "staging"
	if _, err := d.Dispatcher.namespace(); err == nil || !strings.Contains(err.Error(), "not among") {
		t.Fatalf("an environment not listed: %v", err)
	}

	// The default list, and its strict parser.
	var def DevConfig
	if err := def.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if ns, err := def.Dispatcher.namespace(); err != nil || ns != "dotdo-production" {
		t.Fatalf("default namespace() = %q, %v", ns, err)
	}
	def.Dispatcher.Environments = "production=Bad_NS"
	if _, err := def.Dispatcher.namespace(); err == nil {
		t.Fatal("an invalid namespace was accepted")
	}
}
