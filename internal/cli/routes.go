package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	deployv1 "github.com/dot-do/platform/gen/go/dotdo/deploy/v1"
	dispatcherv1 "github.com/dot-do/platform/gen/go/dotdo/dispatcher/v1"
	"github.com/dot-do/platform/internal/config"
	"github.com/dot-do/platform/internal/routing"
	"github.com/dot-do/platform/internal/routing/routingpb"
)

// maxTableFile bounds what `routes set` reads.
const maxTableFile = routing.MaxTableBytes

func runRoutes(ctx context.Context, e *Env, args []string) error {
	return sub(ctx, e, "routes", args, map[string]func(context.Context, *Env, []string) error{
		"get":      routesGet,
		"set":      routesSet,
		"history":  routesHistory,
		"diff":     routesDiff,
		"rollback": routesRollback,
		"resolve":  routesResolve,
	})
}

// routesGet prints a version of a routing table: for people, or with
// --output json the table itself, the file `routes set` reads.
func routesGet(ctx context.Context, e *Env, args []string) error {
	fs := flags(e, "routes get")
	env := fs.String("env", config.DefaultEnvironment, "environment")
	version := fs.Int64("version", 0, "version to print (the current one when 0)")
	out := fs.String("output", "table", "table, or json: the table alone, as `routes set --file` takes it")
	if err := parse(fs, args); err != nil {
		return err
	}
	res, err := e.newClients().routes.GetRoutes(ctx, connect.NewRequest(&deployv1.GetRoutesRequest{Environment: *env, Version: *version}))
	if err != nil {
		return err
	}
	rt := res.Msg.GetRoutes()
	t := routingpb.FromProto(rt.GetTable())
	switch *out {
	case "json":
		_, err := e.Stdout.Write(t.MarshalIndent())
		return err
	case "table", "":
		printRouteVersion(e.Stdout, rt)
		printTable(e.Stdout, t)
		return nil
	}
	return usagef("--output %q: want table or json", *out)
}

// routesSet replaces a routing table with the one in a file.
func routesSet(ctx context.Context, e *Env, args []string) error {
	fs := flags(e, "routes set")
	env := fs.String("env", config.DefaultEnvironment, "environment")
	file := fs.String("file", "", "the table, as JSON (what `routes get --output json` prints); - for stdin (required)")
	ifVersion := fs.Int64("if-version", 0, "refuse unless the current version is this one")
	out := fs.String("output", "table", "table (the new version and what changed), or json (the response)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := checkOutput(*out); err != nil {
		return err
	}
	if *file == "" {
		return usagef("--file is required")
	}
	r := e.Stdin
	if *file != "-" {
		f, err := os.Open(*file)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxTableFile+1))
	if err != nil {
		return err
	}
	// Unknown fields and bad JSON are refused here; validation is the
	// server's, which names the entry it refuses.
	t, err := routing.DecodeTable(data)
	if err != nil {
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("%s: %w", *file, err))
	}
	req := &deployv1.SetRoutesRequest{Environment: *env, Table: routingpb.ToProto(t)}
	if *ifVersion > 0 {
		req.BaseVersion = ifVersion
	}
	c := e.newClients()
	res, err := c.routes.SetRoutes(ctx, connect.NewRequest(req))
	if err != nil {
		return err
	}
	return printRouteChange(ctx, e, c, *out, res.Msg)
}

// routesHistory lists the versions of a routing table, newest first.
func routesHistory(ctx context.Context, e *Env, args []string) error {
	fs := flags(e, "routes history")
	env := fs.String("env", config.DefaultEnvironment, "environment")
	limit := fs.Int("limit", 50, "most versions to show (1-500)")
	out := fs.String("output", "table", "table or json")
	if err := parse(fs, args); err != nil {
		return err
	}
	res, err := e.newClients().routes.ListRouteVersions(ctx, connect.NewRequest(&deployv1.ListRouteVersionsRequest{
		Environment: *env, PageSize: int32(*limit),
	}))
	if err != nil {
		return err
	}
	return output(e, *out, res.Msg, func(w io.Writer) {
		fmt.Fprintln(w, "VERSION\tKIND\tCREATED\tACTOR\tKEY\tPATH ROUTES")
		for _, v := range res.Msg.GetVersions() {
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%d\n", v.GetVersion(), routeKind(v), when(v.GetCreatedAt()),
				dash(v.GetActor().GetName()), dash(v.GetActor().GetKeyId()), len(v.GetTable().GetPathRoutes()))
		}
	})
}

// routesDiff prints how one version of a routing table differs from
// another: by default the current version from the one before it.
func routesDiff(ctx context.Context, e *Env, args []string) error {
	fs := flags(e, "routes diff")
	env := fs.String("env", config.DefaultEnvironment, "environment")
	from := fs.Int64("from", 0, "the older version (default: the one before --to)")
	to := fs.Int64("to", 0, "the newer version (default: the current one)")
	out := fs.String("output", "table", "table, or json: {environment, from, to, changes} with both versions as GetRoutes returns them")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := checkOutput(*out); err != nil {
		return err
	}
	c := e.newClients()
	get := func(v int64) (*deployv1.RouteTableVersion, error) {
		res, err := c.routes.GetRoutes(ctx, connect.NewRequest(&deployv1.GetRoutesRequest{Environment: *env, Version: v}))
		if err != nil {
			return nil, err
		}
		return res.Msg.GetRoutes(), nil
	}
	b, err := get(*to)
	if err != nil {
		return err
	}
	if *from == 0 {
		if b.GetVersion() < 2 {
			return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("version %d has no version before it: give --from", b.GetVersion()))
		}
		*from = b.GetVersion() - 1
	}
	a, err := get(*from)
	if err != nil {
		return err
	}
	lines := routing.Diff(routingpb.FromProto(a.GetTable()), routingpb.FromProto(b.GetTable()))
	if *out == "json" {
		return printRouteDiff(e, *env, a, b, lines)
	}
	fmt.Fprintf(e.Stdout, "routing table of %s: version %d -> %d\n", *env, a.GetVersion(), b.GetVersion())
	if len(lines) == 0 {
		fmt.Fprintln(e.Stdout, "no difference")
	}
	for _, l := range lines {
		fmt.Fprintln(e.Stdout, l)
	}
	return nil
}

// routeDiff is what `routes diff --output json` prints.
type routeDiff struct {
	Environment string          `json:"environment"`
	From        json.RawMessage `json:"from"`
	To          json.RawMessage `json:"to"`
	Changes     []string        `json:"changes"`
}

// printRouteDiff prints the difference of two versions as JSON: both
// versions in their protojson form and the lines of routing.Diff.
func printRouteDiff(e *Env, env string, a, b *deployv1.RouteTableVersion, lines []string) error {
	d := routeDiff{Environment: env, Changes: append([]string{}, lines...)}
	var err error
	if d.From, err = protoJSON(a); err != nil {
		return err
	}
	if d.To, err = protoJSON(b); err != nil {
		return err
	}
	j, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintln(e.Stdout, string(j))
	return nil
}

// routesRollback restores an earlier version of a routing table.
func routesRollback(ctx context.Context, e *Env, args []string) error {
	fs := flags(e, "routes rollback")
	env := fs.String("env", config.DefaultEnvironment, "environment")
	version := fs.Int64("version", 0, "version to restore (default: the one before the current one)")
	out := fs.String("output", "table", "table (the new version and what changed), or json (the response)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := checkOutput(*out); err != nil {
		return err
	}
	c := e.newClients()
	res, err := c.routes.RollbackRoutes(ctx, connect.NewRequest(&deployv1.RollbackRoutesRequest{Environment: *env, Version: *version}))
	if err != nil {
		return err
	}
	return printRouteChange(ctx, e, c, *out, res.Msg)
}

// routeChange is the response of a change of a routing table: SetRoutes'
// or RollbackRoutes'.
type routeChange interface {
	proto.Message
	GetRoutes() *deployv1.RouteTableVersion
	GetPreviousVersion() int64
}

// printRouteChange prints the response of a change of a routing table: as
// JSON, or for people the new version and how it differs from the one
// before.
func printRouteChange(ctx context.Context, e *Env, c clients, format string, res routeChange) error {
	rt, prev := res.GetRoutes(), res.GetPreviousVersion()
	if format == "json" {
		return output(e, format, res, nil)
	}
	var before routing.Table
	if prev == 0 {
		before = routing.Seed()
	} else {
		got, err := c.routes.GetRoutes(ctx, connect.NewRequest(&deployv1.GetRoutesRequest{Environment: rt.GetEnvironment(), Version: prev}))
		if err != nil {
			return err
		}
		before = routingpb.FromProto(got.Msg.GetRoutes().GetTable())
	}
	fmt.Fprintf(e.Stdout, "routing table of %s: version %d (was %d)", rt.GetEnvironment(), rt.GetVersion(), prev)
	if rt.GetKind() == deployv1.RouteTableKind_ROUTE_TABLE_KIND_ROLLBACK {
		fmt.Fprintf(e.Stdout, ", restoring version %d", rt.GetRestoredVersion())
	}
	fmt.Fprintln(e.Stdout)
	for _, l := range routing.Diff(before, routingpb.FromProto(rt.GetTable())) {
		fmt.Fprintln(e.Stdout, l)
	}
	return nil
}

// routesResolve asks the dispatcher how it routes a URL.
func routesResolve(ctx context.Context, e *Env, args []string) error {
	fs := flags(e, "routes resolve")
	out := fs.String("output", "table", "table or json")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("want one URL, for example https://api.do/api/db/users")
	}
	res, err := e.newClients().dispatcher.Resolve(ctx, connect.NewRequest(&dispatcherv1.ResolveRequest{Url: fs.Arg(0)}))
	if err != nil {
		return err
	}
	r := res.Msg
	return output(e, *out, r, func(w io.Writer) {
		if !r.GetMatched() {
			fmt.Fprintf(w, "no route: %s\n", r.GetReason())
			return
		}
		rule := strings.ToLower(strings.TrimPrefix(r.GetRule().String(), "RULE_"))
		fmt.Fprintf(w, "worker\t%s\nrule\t%s\nenvironment\t%s\nnamespace\t%s\nversion\t%d\npath\t%s\n",
			r.GetWorker(), rule, r.GetEnvironment(), r.GetNamespace(), r.GetVersion(), r.GetPath())
		if r.GetReason() != "" {
			fmt.Fprintf(w, "note\t%s\n", r.GetReason())
		}
	})
}

func routeKind(v *deployv1.RouteTableVersion) string {
	k := strings.ToLower(strings.TrimPrefix(v.GetKind().String(), "ROUTE_TABLE_KIND_"))
	if v.GetKind() == deployv1.RouteTableKind_ROUTE_TABLE_KIND_ROLLBACK {
		k = fmt.Sprintf("rollback->v%d", v.GetRestoredVersion())
	}
	return k
}

func printRouteVersion(w io.Writer, rt *deployv1.RouteTableVersion) {
	if rt.GetVersion() == 0 {
		fmt.Fprintf(w, "environment   %s\nversion       none stored: the seed table\n", rt.GetEnvironment())
		return
	}
	fmt.Fprintf(w, "environment   %s\nversion       %d (%s, %s by %s)\n", rt.GetEnvironment(), rt.GetVersion(), routeKind(rt),
		when(rt.GetCreatedAt()), dash(rt.GetActor().GetName()))
}

// printTable prints a table for people.
func printTable(w io.Writer, t routing.Table) {
	sub := "off"
	switch {
	case t.Subdomains && t.SubdomainsAnyWorker:
		sub = "on, any worker of the environment: <worker>." + strings.Join(t.BaseDomains, ", <worker>.")
	case t.Subdomains:
		sub = "on, workers listed: <worker>." + strings.Join(t.BaseDomains, ", <worker>.")
	}
	fmt.Fprintf(w, "base domains  %s\nworkers       %s\ndefault       %s on %s\nsubdomains    %s\npath routes   %d\n",
		strings.Join(t.BaseDomains, ", "), strings.Join(t.Workers, ", "), t.DefaultWorker, dash(strings.Join(t.DefaultHosts, ", ")), sub, len(t.PathRoutes))
	for _, r := range t.PathRoutes {
		fmt.Fprintf(w, "  %s\n", r)
	}
}

// runDispatcher is the dispatch Worker's command group.
func runDispatcher(ctx context.Context, e *Env, args []string) error {
	return sub(ctx, e, "dispatcher", args, map[string]func(context.Context, *Env, []string) error{
		"build":    dispatcherBuild,
		"deploy":   dispatcherDeploy,
		"history":  dispatcherHistory,
		"rollback": dispatcherRollback,
	})
}

// dispatcherBuild writes the dispatch Worker generated from the current
// routing table, and its wrangler.json, to a directory.
func dispatcherBuild(ctx context.Context, e *Env, args []string) error {
	fs := flags(e, "dispatcher build")
	env := fs.String("env", config.DefaultEnvironment, "environment")
	out := fs.String("out", "", "directory to write index.js and wrangler.json to (required)")
	format := fs.String("output", "table", "table, or json (the response, each file by name only: its content is in --out)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := checkOutput(*format); err != nil {
		return err
	}
	if *out == "" {
		return usagef("--out is required")
	}
	res, err := e.newClients().routes.BuildDispatchWorker(ctx, connect.NewRequest(&deployv1.BuildDispatchWorkerRequest{Environment: *env}))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	var wrote []string
	for _, f := range res.Msg.GetFiles() {
		name := filepath.Base(f.GetName()) // the server names files; never a path
		if err := os.WriteFile(filepath.Join(*out, name), f.GetContent(), 0o644); err != nil {
			return err
		}
		wrote = append(wrote, fmt.Sprintf("%s (%d bytes)", filepath.Join(*out, name), len(f.GetContent())))
		f.Content = nil // written; the JSON names the file only
	}
	return output(e, *format, res.Msg, func(w io.Writer) {
		fmt.Fprintf(w, "%s from routing table version %d of %s: wrote %s\nroutes: %s\n", res.Msg.GetScriptName(),
			res.Msg.GetRouteTableVersion(), *env, strings.Join(wrote, ", "), strings.Join(res.Msg.GetRoutes(), " "))
	})
}

// dispatcherDeploy deploys the dispatch Worker of the current routing
// table.
func dispatcherDeploy(ctx context.Context, e *Env, args []string) error {
	fs := flags(e, "dispatcher deploy")
	env := fs.String("env", config.DefaultEnvironment, "environment")
	out := fs.String("output", "table", "table or json")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := checkOutput(*out); err != nil {
		return err
	}
	res, err := e.newClients().routes.DeployDispatchWorker(ctx, connect.NewRequest(&deployv1.DeployDispatchWorkerRequest{Environment: *env}))
	if err != nil {
		return dispatchWorkerFailed(e, *out, err)
	}
	return printDispatchWorker(e, *out, res.Msg)
}

// dispatcherRollback uploads an earlier dispatch Worker again.
func dispatcherRollback(ctx context.Context, e *Env, args []string) error {
	fs := flags(e, "dispatcher rollback")
	env := fs.String("env", config.DefaultEnvironment, "environment")
	version := fs.Int64("version", 0, "version to restore (default: the one live before the current one)")
	out := fs.String("output", "table", "table or json")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := checkOutput(*out); err != nil {
		return err
	}
	res, err := e.newClients().routes.RollbackDispatchWorker(ctx, connect.NewRequest(&deployv1.RollbackDispatchWorkerRequest{Environment: *env, Version: *version}))
	if err != nil {
		return dispatchWorkerFailed(e, *out, err)
	}
	return printDispatchWorker(e, *out, res.Msg)
}

// dispatcherHistory lists the deployments of a dispatch Worker.
func dispatcherHistory(ctx context.Context, e *Env, args []string) error {
	fs := flags(e, "dispatcher history")
	env := fs.String("env", config.DefaultEnvironment, "environment")
	limit := fs.Int("limit", 50, "most deployments to show (1-500)")
	out := fs.String("output", "table", "table or json")
	if err := parse(fs, args); err != nil {
		return err
	}
	res, err := e.newClients().routes.ListDispatchWorkerDeployments(ctx, connect.NewRequest(&deployv1.ListDispatchWorkerDeploymentsRequest{
		Environment: *env, PageSize: int32(*limit),
	}))
	if err != nil {
		return err
	}
	return output(e, *out, res.Msg, func(w io.Writer) {
		fmt.Fprintln(w, "VERSION\tSTATUS\tKIND\tTABLE\tCREATED\tACTOR\tROUTES")
		for _, d := range res.Msg.GetDeployments() {
			kind := strings.ToLower(strings.TrimPrefix(d.GetKind().String(), "DEPLOYMENT_KIND_"))
			if d.GetKind() == deployv1.DeploymentKind_DEPLOYMENT_KIND_ROLLBACK {
				kind = fmt.Sprintf("rollback->v%d", d.GetRestoredVersion())
			}
			fmt.Fprintf(w, "%d\t%s\t%s\tv%d\t%s\t%s\t%s\n", d.GetVersion(), statusName(d.GetStatus()), kind, d.GetRouteTableVersion(),
				when(d.GetCreatedAt()), dash(d.GetActor().GetName()), strings.Join(d.GetRoutes(), " "))
		}
	})
}

// printDispatchWorker prints the response of a dispatch Worker deploy or
// rollback (both hold the deployment alone).
func printDispatchWorker(e *Env, format string, res interface {
	proto.Message
	GetDeployment() *deployv1.DispatchWorkerDeployment
}) error {
	d := res.GetDeployment()
	return output(e, format, res, func(w io.Writer) {
		fmt.Fprintf(w, "%s %s version %d: %s, from routing table version %d (deployment %s)\nroutes: %s\n",
			d.GetScriptName(), d.GetEnvironment(), d.GetVersion(), statusName(d.GetStatus()), d.GetRouteTableVersion(), d.GetId(),
			strings.Join(d.GetRoutes(), " "))
	})
}

// dispatchWorkerFailed turns the error of a dispatch Worker deploy that
// the server recorded as failed (its error carries the deployment) into
// deployFailed, after printing the deployment as a deploy's response; any
// other error is returned as it is.
func dispatchWorkerFailed(e *Env, format string, err error) error {
	var cerr *connect.Error
	if !errors.As(err, &cerr) {
		return err
	}
	for _, d := range cerr.Details() {
		v, derr := d.Value()
		if dw, ok := v.(*deployv1.DispatchWorkerDeployment); derr == nil && ok {
			if perr := printDispatchWorker(e, format, &deployv1.DeployDispatchWorkerResponse{Deployment: dw}); perr != nil {
				return perr
			}
			return deployFailed{"dispatch Worker deployment failed: " + cerr.Message()}
		}
	}
	return err
}
