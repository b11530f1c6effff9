package config

import (
	"slices"
	"strings"
	"testing"
)

func TestParseEnvironments(t *testing.T) {
	envs, err := ParseEnvironments(" production=prod-ns, staging ,,")
	want := []Environment{{Name: "production", Namespace: "prod-ns"}, {Name: "staging", Namespace: "dotdo-staging"}}
	if err != nil || !slices.Equal(envs, want) {
		t.Fatalf("ParseEnvironments = %+v, %v; want %+v", envs, err, want)
	}
	for in, why := range map[string]string{
		"":                                "none listed",
		" , ":                             "none listed",
		"=ns":                             "invalid name",
		"prod=":                           "invalid namespace",
		"Prod":                            "invalid name",
		"1prod":                           "invalid name",
		"prod_1":                          "invalid name",
		strings.Repeat("p", 33):           "invalid name",
		"prod=Prod-NS":                    "invalid namespace",
		"prod=ns-":                        "invalid namespace",
		"prod=-ns":                        "invalid namespace",
		"prod=ns_1":                       "invalid namespace",
		"prod=" + strings.Repeat("n", 64): "invalid namespace",
		"a=ns,a=other":                    "listed twice",
		"a=ns,b=ns":                       "another environment's",
		"a,b=dotdo-a":                     "another environment's",
	} {
		if got, err := ParseEnvironments(in); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("ParseEnvironments(%q) = %+v, %v; want an error saying %q", in, got, err, why)
		}
	}
}

// TestDefaultEnvironments: the default list is valid, starts with
// DefaultEnvironment, survives FormatEnvironments and ParseEnvironments,
// and is the caller's to change.
func TestDefaultEnvironments(t *testing.T) {
	def := DefaultEnvironments()
	if err := ValidateEnvironments(def); err != nil || def[0].Name != DefaultEnvironment {
		t.Fatalf("DefaultEnvironments() = %+v: %v", def, err)
	}
	s := FormatEnvironments(def)
	if s != "production=dotdo-production,staging=dotdo-staging,development=dotdo-development" {
		t.Errorf("FormatEnvironments(DefaultEnvironments()) = %q", s)
	}
	if back, err := ParseEnvironments(s); err != nil || !slices.Equal(back, def) {
		t.Errorf("round trip: %+v, %v", back, err)
	}
	def[0].Namespace = "changed"
	if DefaultEnvironments()[0].Namespace != DefaultNamespace(DefaultEnvironment) {
		t.Error("DefaultEnvironments shares its slice")
	}
}

func TestFindEnvironment(t *testing.T) {
	envs := DefaultEnvironments()
	if e, ok := FindEnvironment(envs, "staging"); !ok || e.Namespace != "dotdo-staging" {
		t.Errorf("FindEnvironment(staging) = %+v, %t", e, ok)
	}
	if e, ok := FindEnvironment(envs, "mars"); ok {
		t.Errorf("FindEnvironment(mars) = %+v", e)
	}
}
