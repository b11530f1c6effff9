package cloudflare

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	cf "github.com/cloudflare/cloudflare-go/v6"
	"github.com/cloudflare/cloudflare-go/v6/workers"
	"github.com/cloudflare/cloudflare-go/v6/zones"

	"github.com/dot-do/platform/services/deploy/backend"
)

// A dispatch Worker is an account-level script (PUT
// /accounts/{account_id}/workers/scripts/{script_name}) with a
// dispatch_namespace binding, attached to its environment's domains by
// Workers routes on their zones (GET /zones?name=, then
// /zones/{zone_id}/workers/routes). Routes rather than Custom Domains:
// subdomain routing needs the wildcard "*.<base domain>/*", and a Custom
// Domain takes exactly one host name.

var (
	_ backend.DispatchWorkers = (*Backend)(nil)
	_ backend.DispatchCrons   = (*Backend)(nil)
)

// CronsByDispatchWorker implements backend.DispatchCrons: true on
// Cloudflare, false on the local runtime, which fires the namespace
// scripts' crons itself.
func (b *Backend) CronsByDispatchWorker() bool { return !b.runtime }

// UploadDispatchWorker implements backend.DispatchWorkers, with the token
// of w.Namespace's environment: it uploads the script, then sets its cron
// triggers (PUT /accounts/{account_id}/workers/scripts/{script_name}/schedules,
// the whole list, so that an empty one clears them).
func (b *Backend) UploadDispatchWorker(ctx context.Context, w backend.DispatchWorker) error {
	op := "upload dispatch worker " + w.Name
	for _, n := range []struct{ what, name string }{{"script", w.Name}, {"namespace", w.Namespace}, {"module", w.MainModule}} {
		if err := checkName(n.what, n.name); err != nil {
			return err
		}
	}
	meta := workers.ScriptUpdateParamsMetadata{
		MainModule:        cf.F(w.MainModule),
		CompatibilityDate: cf.F(w.CompatibilityDate),
		Bindings: cf.F([]workers.ScriptUpdateParamsMetadataBindingUnion{
			workers.ScriptUpdateParamsMetadataBindingsWorkersBindingKindDispatchNamespace{
				Name:      cf.F(w.Binding),
				Namespace: cf.F(w.Namespace),
				Type:      cf.F(workers.ScriptUpdateParamsMetadataBindingsWorkersBindingKindDispatchNamespaceTypeDispatchNamespace),
			},
		}),
	}
	var raw *http.Response
	_, err := b.scripts.Update(ctx, w.Name, workers.ScriptUpdateParams{
		AccountID: cf.F(b.accountID),
		Metadata:  cf.F(meta),
		Files:     cf.F([]io.Reader{&part{Reader: strings.NewReader(string(w.Module)), name: w.MainModule, contentType: "application/javascript+module"}}),
	}, b.opts(w.Namespace, &raw)...)
	if err != nil {
		return b.fail(op, raw, err)
	}
	body := make([]workers.ScriptScheduleUpdateParamsBody, len(w.Crons))
	for i, c := range w.Crons {
		body[i] = workers.ScriptScheduleUpdateParamsBody{Cron: cf.F(c)}
	}
	_, err = b.scripts.Schedules.Update(ctx, w.Name, workers.ScriptScheduleUpdateParams{AccountID: cf.F(b.accountID), Body: body}, b.opts(w.Namespace, &raw)...)
	if err != nil {
		return b.fail("set the cron triggers of dispatch worker "+w.Name, raw, err)
	}
	return nil
}

// RouteDispatchWorker implements backend.DispatchWorkers: for each zone of
// the hosts of patterns and previous, it lists the zone's Workers routes,
// creates the missing ones of patterns, points those of patterns that run
// another script at script, and deletes script's routes of previous that
// patterns no longer holds. Routes of other scripts are left alone.
func (b *Backend) RouteDispatchWorker(ctx context.Context, namespace, script string, patterns, previous []string) error {
	if err := checkName("script", script); err != nil {
		return err
	}
	zoneOf := map[string]string{} // host -> zone id ("" when none)
	byZone := map[string][]string{}
	var order []string
	for _, p := range append(slices.Clone(patterns), previous...) {
		host, ok := patternHost(p)
		if !ok {
			return &backend.Error{Op: "route dispatch worker " + script, Sentinel: backend.ErrRejected, Message: fmt.Sprintf("%q is not a route pattern", p)}
		}
		zone, seen := zoneOf[host]
		if !seen {
			var err error
			if zone, err = b.findZone(ctx, namespace, host); err != nil {
				return err
			}
			zoneOf[host] = zone
		}
		if zone == "" {
			if slices.Contains(patterns, p) {
				return &backend.Error{Op: "route " + p + " to " + script, Sentinel: backend.ErrRejected,
					Message: fmt.Sprintf("no zone of the account holds %s: add the domain to the account first", host)}
			}
			continue // a previous route on a zone no longer there
		}
		if _, ok := byZone[zone]; !ok {
			order = append(order, zone)
		}
		byZone[zone] = append(byZone[zone], p)
	}
	for _, zone := range order {
		if err := b.routeZone(ctx, namespace, zone, script, byZone[zone], patterns); err != nil {
			return err
		}
	}
	return nil
}

// routeZone makes the routes of zone agree with want for script: zonePatterns
// are the patterns (desired or previous) on the zone.
func (b *Backend) routeZone(ctx context.Context, namespace, zone, script string, zonePatterns, want []string) error {
	var raw *http.Response
	page, err := b.routes.List(ctx, workers.RouteListParams{ZoneID: cf.F(zone)}, b.opts(namespace, &raw)...)
	if err != nil {
		return b.fail("list the Workers routes of zone "+zone, raw, err)
	}
	existing := map[string]workers.RouteListResponse{}
	for _, r := range page.Result {
		existing[r.Pattern] = r
	}
	for _, p := range zonePatterns {
		r, ok := existing[p]
		switch desired := slices.Contains(want, p); {
		case desired && !ok:
			_, err = b.routes.New(ctx, workers.RouteNewParams{ZoneID: cf.F(zone), Pattern: cf.F(p), Script: cf.F(script)}, b.opts(namespace, &raw)...)
			err = b.failIf("create the Workers route "+p, raw, err)
		case desired && r.Script != script:
			_, err = b.routes.Update(ctx, r.ID, workers.RouteUpdateParams{ZoneID: cf.F(zone), ID: cf.F(r.ID), Pattern: cf.F(p), Script: cf.F(script)}, b.opts(namespace, &raw)...)
			err = b.failIf("point the Workers route "+p+" at "+script, raw, err)
		case !desired && ok && r.Script == script:
			_, err = b.routes.Delete(ctx, r.ID, workers.RouteDeleteParams{ZoneID: cf.F(zone)}, b.opts(namespace, &raw)...)
			err = b.failIf("delete the Workers route "+p, raw, err)
		}
		if err != nil {
			return err
		}
		existing[p] = workers.RouteListResponse{ID: r.ID, Pattern: p, Script: script} // a pattern listed twice is done once
	}
	return nil
}

// findZone returns the id of the account's zone that holds host: the zone
// named host, else its parent's, and so on (as wrangler finds a route's
// zone); "" when there is none.
func (b *Backend) findZone(ctx context.Context, namespace, host string) (string, error) {
	for name := host; ; {
		var raw *http.Response
		page, err := b.zones.List(ctx, zones.ZoneListParams{
			Name:    cf.F(name),
			Account: cf.F(zones.ZoneListParamsAccount{ID: cf.F(b.accountID)}),
		}, b.opts(namespace, &raw)...)
		if err != nil {
			return "", b.fail("find the zone of "+host, raw, err)
		}
		for _, z := range page.Result {
			if z.Name == name {
				return z.ID, nil
			}
		}
		i := strings.IndexByte(name, '.')
		if i < 0 {
			return "", nil
		}
		name = name[i+1:]
	}
}

// patternHost returns the host of a Workers route pattern ("*.do/*" ->
// "do", "api.do/*" -> "api.do").
func patternHost(p string) (string, bool) {
	host, _, ok := strings.Cut(p, "/")
	host = strings.TrimPrefix(host, "*.")
	if !ok || host == "" || strings.ContainsAny(host, "*:") {
		return "", false
	}
	return host, true
}

// failIf is fail for a non-nil err.
func (b *Backend) failIf(op string, raw *http.Response, err error) error {
	if err == nil {
		return nil
	}
	return b.fail(op, raw, err)
}
