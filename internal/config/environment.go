package config

import (
	"fmt"
	"regexp"
	"strings"
)

// Environment is a deploy target: a name such as "production" and the
// dispatch namespace its workers go to. It is the one model of an
// environment: the deploy service, the dispatcher, the binaries and the CLI
// all use it, read from DOTDO_ENVIRONMENTS by ParseEnvironments.
type Environment struct {
	// Name is the environment's name, for example "production": 1 to 32
	// lowercase letters, digits and '-', starting with a letter.
	Name string
	// Namespace is its dispatch namespace, for example "dotdo-production":
	// 1 to 63 lowercase letters, digits and '-', neither first nor last
	// a '-' (a Cloudflare script name).
	Namespace string
}

// DefaultEnvironment is the environment the dispatcher serves and the CLI
// deploys to when none is named: the first of DefaultEnvironments.
const DefaultEnvironment = "production"

// NamespacePrefix starts the namespace of an environment listed by name
// alone (see DefaultNamespace).
const NamespacePrefix = "dotdo-"

// DefaultEnvironments returns the environments when DOTDO_ENVIRONMENTS is
// not set: production, staging and development, in namespaces
// dotdo-production, dotdo-staging and dotdo-development. The slice is the
// caller's.
func DefaultEnvironments() []Environment {
	return []Environment{
		{Name: DefaultEnvironment, Namespace: DefaultNamespace(DefaultEnvironment)},
		{Name: "staging", Namespace: DefaultNamespace("staging")},
		{Name: "development", Namespace: DefaultNamespace("development")},
	}
}

// DefaultNamespace returns the dispatch namespace of an environment that
// names none: NamespacePrefix + env.
func DefaultNamespace(env string) string { return NamespacePrefix + env }

var (
	environmentNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	namespaceRE       = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
)

// Limits of Environment's fields.
const (
	// MaxEnvironmentName is the longest environment name.
	MaxEnvironmentName = 32
	// MaxNamespace is the longest namespace name.
	MaxNamespace = 63
)

// ParseEnvironments reads DOTDO_ENVIRONMENTS: a comma-separated list of
// environments, each "name=namespace" or a bare "name" (namespace
// DefaultNamespace(name)), for example "production=dotdo-production,staging".
// Blanks around items are ignored, and so are empty items. The result is
// checked with ValidateEnvironments; an empty list is an error.
func ParseEnvironments(s string) ([]Environment, error) {
	var envs []Environment
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, ns, ok := strings.Cut(item, "=")
		name, ns = strings.TrimSpace(name), strings.TrimSpace(ns)
		if !ok {
			ns = DefaultNamespace(name)
		}
		envs = append(envs, Environment{Name: name, Namespace: ns})
	}
	if len(envs) == 0 {
		return nil, fmt.Errorf("environments %q: none listed (want name=namespace,...)", s)
	}
	if err := ValidateEnvironments(envs); err != nil {
		return nil, err
	}
	return envs, nil
}

// ValidateEnvironments checks a list of environments: every name and
// namespace well formed (see Environment), no name and no namespace twice.
func ValidateEnvironments(envs []Environment) error {
	names := make(map[string]bool, len(envs))
	namespaces := make(map[string]bool, len(envs))
	for _, e := range envs {
		switch {
		case len(e.Name) > MaxEnvironmentName || !environmentNameRE.MatchString(e.Name):
			return fmt.Errorf("environment %q: invalid name (want 1 to %d of a-z, 0-9 and '-', starting with a letter)", e.Name, MaxEnvironmentName)
		case len(e.Namespace) > MaxNamespace || !namespaceRE.MatchString(e.Namespace):
			return fmt.Errorf("environment %q: invalid namespace %q (want 1 to %d of a-z, 0-9 and '-', not starting or ending with '-')", e.Name, e.Namespace, MaxNamespace)
		case names[e.Name]:
			return fmt.Errorf("environment %q listed twice", e.Name)
		case namespaces[e.Namespace]:
			return fmt.Errorf("environment %q: namespace %q is another environment's", e.Name, e.Namespace)
		}
		names[e.Name], namespaces[e.Namespace] = true, true
	}
	return nil
}

// FormatEnvironments is the inverse of ParseEnvironments.
func FormatEnvironments(envs []Environment) string {
	parts := make([]string, len(envs))
	for i, e := range envs {
		parts[i] = e.Name + "=" + e.Namespace
	}
	return strings.Join(parts, ",")
}

// FindEnvironment returns the environment named name among envs, and
// whether there is one.
func FindEnvironment(envs []Environment, name string) (Environment, bool) {
	for _, e := range envs {
		if e.Name == name {
			return e, true
		}
	}
	return Environment{}, false
}
