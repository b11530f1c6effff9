package dispatcher

import "github.com/dot-do/platform/internal/routing"

// Route is how the dispatcher routes one request: the worker, namespace and
// version that serve it and the rule that picked them, or why none does.
type Route struct {
	// Rule is the rule that picked Worker (routing.RuleNone if none did).
	Rule routing.Rule
	// Worker is the worker (script) picked by Rule.
	Worker string
	// Environment is the dispatcher's environment.
	Environment string
	// Namespace is the dispatch namespace the worker is served from.
	Namespace string
	// Version is the worker's live version; 0 when nothing is live.
	Version int64
	// Path is the path the worker sees: the request's path as sent
	// (percent-encoding preserved), without the query.
	Path string
	// Miss is why the request is not forwarded; routing.MissNone when it
	// is. Miss.Status and Miss.Code give the answer.
	Miss routing.Miss
	// Reason explains Miss; it is the message of the JSON error answer.
	// Empty when Miss is routing.MissNone.
	Reason string
	// TableVersion is the version of the routing table that routed the
	// request (0: the seed table, none being stored yet).
	TableVersion int64
}

// seedRouter routes with routing.Seed() until a table is stored.
var seedRouter = routing.MustCompile(routing.Seed())

// route applies the routing table and live versions of s (nil before the
// first snapshot) to a request for host and path (as sent: escaped).
func (d *Dispatcher) route(s *state, host, path string) Route {
	r := Route{Environment: d.cfg.Environment, Namespace: d.cfg.Namespace}
	if s == nil {
		// Malformed requests are refused as such; any other waits for the
		// first snapshot.
		m := seedRouter.Route(host, path)
		if m.Miss != routing.MissBadHost && m.Miss != routing.MissBadPath {
			m = m.NotReady()
		}
		return r.from(m)
	}
	r.TableVersion = s.tableVersion
	m := s.router.Route(host, path)
	if m.Miss == routing.MissNone {
		lv, ok := s.workers.get(m.Worker)
		if !ok {
			return r.from(m.NotLive(d.cfg.Environment))
		}
		r.Namespace, r.Version = lv.Namespace, lv.Version
	}
	return r.from(m)
}

// from fills r from a routing match.
func (r Route) from(m routing.Match) Route {
	r.Rule, r.Worker, r.Path, r.Miss, r.Reason = m.Rule, m.Worker, m.Path, m.Miss, m.Reason
	return r
}
