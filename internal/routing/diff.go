package routing

import (
	"fmt"
	"slices"
	"strings"
)

// Diff describes how table to differs from table from, one change per
// line: "+ " for an entry added, "- " for one removed, "~ " for a setting
// changed. Lists are compared as sets, path routes by their whole entry
// (prefix, worker and hosts). It returns nil when the tables route alike
// entry for entry.
func Diff(from, to Table) []string {
	from, to = from.Normalize(), to.Normalize()
	var out []string
	sets := func(name string, a, b []string) {
		for _, v := range b {
			if !slices.Contains(a, v) {
				out = append(out, fmt.Sprintf("+ %s: %s", name, v))
			}
		}
		for _, v := range a {
			if !slices.Contains(b, v) {
				out = append(out, fmt.Sprintf("- %s: %s", name, v))
			}
		}
	}
	sets("base_domains", from.BaseDomains, to.BaseDomains)
	sets("workers", from.Workers, to.Workers)
	if from.DefaultWorker != to.DefaultWorker {
		out = append(out, fmt.Sprintf("~ default_worker: %s -> %s", from.DefaultWorker, to.DefaultWorker))
	}
	sets("default_hosts", from.DefaultHosts, to.DefaultHosts)
	if from.Subdomains != to.Subdomains {
		out = append(out, fmt.Sprintf("~ subdomains: %t -> %t", from.Subdomains, to.Subdomains))
	}
	if from.SubdomainsAnyWorker != to.SubdomainsAnyWorker {
		out = append(out, fmt.Sprintf("~ subdomains_any_worker: %t -> %t", from.SubdomainsAnyWorker, to.SubdomainsAnyWorker))
	}
	sets("path_routes", describeRoutes(from.PathRoutes), describeRoutes(to.PathRoutes))
	return out
}

// describeRoutes renders each route as "PREFIX -> WORKER on HOST, HOST".
func describeRoutes(rs []PathRoute) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.String()
	}
	return out
}

// String renders r as "PREFIX -> WORKER on HOST, HOST".
func (r PathRoute) String() string {
	return fmt.Sprintf("%s -> %s on %s", r.Prefix, r.Worker, strings.Join(r.Hosts, ", "))
}
