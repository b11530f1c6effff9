package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	dbv1 "github.com/dot-do/platform/gen/go/dotdo/db/v1"
	deployv1 "github.com/dot-do/platform/gen/go/dotdo/deploy/v1"
)

// output writes msg as indented JSON (its protojson form), or calls table
// for the table form.
func output(e *Env, format string, msg proto.Message, table func(w io.Writer)) error {
	if err := checkOutput(format); err != nil {
		return err
	}
	if format == "json" {
		b, err := protoJSON(msg)
		if err != nil {
			return err
		}
		fmt.Fprintln(e.Stdout, string(b))
		return nil
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// protoJSON is msg's protojson form, indented.
func protoJSON(msg proto.Message) ([]byte, error) {
	return protojson.MarshalOptions{Multiline: true, Indent: "  ", EmitUnpopulated: false}.Marshal(msg)
}

// checkOutput refuses an --output other than table (or empty) and json, so
// that a command can check it before it acts.
func checkOutput(format string) error {
	if format != "table" && format != "" && format != "json" {
		return usagef("--output %q: want table or json", format)
	}
	return nil
}

func when(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().UTC().Format(time.RFC3339)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func runDeployments(ctx context.Context, e *Env, args []string) error {
	fs := flags(e, "deployments")
	service := fs.String("service", "", "only this worker")
	env := fs.String("env", "", "only this environment")
	status := fs.String("status", "", "only this status: pending, live, failed, superseded")
	limit := fs.Int("limit", 50, "most deployments to show (1-500)")
	out := fs.String("output", "table", "table or json")
	if err := parse(fs, args); err != nil {
		return err
	}
	req := &deployv1.ListDeploymentsRequest{Service: *service, Environment: *env, PageSize: int32(*limit)}
	if *status != "" {
		v, ok := deployv1.DeploymentStatus_value["DEPLOYMENT_STATUS_"+strings.ToUpper(*status)]
		if !ok || v == 0 {
			return usagef("--status %q: want pending, live, failed or superseded", *status)
		}
		req.Status = deployv1.DeploymentStatus(v)
	}
	res, err := e.newClients().deploy.ListDeployments(ctx, connect.NewRequest(req))
	if err != nil {
		return err
	}
	return output(e, *out, res.Msg, func(w io.Writer) {
		fmt.Fprintln(w, "SERVICE\tENV\tVERSION\tSTATUS\tKIND\tCREATED\tACTOR\tCOMMIT\tID")
		for _, d := range res.Msg.GetDeployments() {
			kind := strings.ToLower(strings.TrimPrefix(d.GetKind().String(), "DEPLOYMENT_KIND_"))
			if d.GetKind() == deployv1.DeploymentKind_DEPLOYMENT_KIND_ROLLBACK {
				kind = fmt.Sprintf("rollback->v%d", d.GetRestoredVersion())
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", d.GetService(), d.GetEnvironment(), d.GetVersion(),
				statusName(d.GetStatus()), kind, when(d.GetCreatedAt()), dash(d.GetActor().GetName()),
				dash(d.GetMetadata().GetCommit()), d.GetId())
		}
	})
}

func runNamespaces(ctx context.Context, e *Env, args []string) error {
	return sub(ctx, e, "namespaces", args, map[string]func(context.Context, *Env, []string) error{
		"list": func(ctx context.Context, e *Env, args []string) error {
			fs := flags(e, "namespaces list")
			out := fs.String("output", "table", "table or json")
			if err := parse(fs, args); err != nil {
				return err
			}
			res, err := e.newClients().deploy.ListNamespaces(ctx, connect.NewRequest(&deployv1.ListNamespacesRequest{}))
			if err != nil {
				return err
			}
			return output(e, *out, res.Msg, func(w io.Writer) { namespaceTable(w, res.Msg.GetNamespaces()) })
		},
		"ensure": func(ctx context.Context, e *Env, args []string) error {
			fs := flags(e, "namespaces ensure")
			var envs stringList
			fs.Var(&envs, "env", "environment to ensure (repeatable; all when none)")
			out := fs.String("output", "table", "table or json")
			if err := parse(fs, args); err != nil {
				return err
			}
			if err := checkOutput(*out); err != nil {
				return err
			}
			res, err := e.newClients().deploy.EnsureNamespaces(ctx, connect.NewRequest(&deployv1.EnsureNamespacesRequest{Environments: envs}))
			if err != nil {
				return err
			}
			return output(e, *out, res.Msg, func(w io.Writer) {
				for _, n := range res.Msg.GetNamespaces() {
					verb := "exists"
					if slices.Contains(res.Msg.GetCreated(), n.GetName()) {
						verb = "created"
					}
					fmt.Fprintf(w, "%s\t%s\t%s\n", n.GetEnvironment(), n.GetName(), verb)
				}
			})
		},
	})
}

func namespaceTable(w io.Writer, ns []*deployv1.Namespace) {
	fmt.Fprintln(w, "ENV\tNAMESPACE\tEXISTS\tSCRIPTS")
	for _, n := range ns {
		fmt.Fprintf(w, "%s\t%s\t%t\t%d\n", n.GetEnvironment(), n.GetName(), n.GetExists(), n.GetScriptCount())
	}
}

func runAudit(ctx context.Context, e *Env, args []string) error {
	return sub(ctx, e, "audit", args, map[string]func(context.Context, *Env, []string) error{
		"list": func(ctx context.Context, e *Env, args []string) error {
			fs := flags(e, "audit list")
			actor := fs.String("actor", "", "only events of this key id")
			action := fs.String("action", "", "only events of this action, for example deployment.deploy")
			limit := fs.Int("limit", 50, "most events to show (1-500)")
			out := fs.String("output", "table", "table or json")
			if err := parse(fs, args); err != nil {
				return err
			}
			res, err := e.newClients().admin.ListAuditEvents(ctx, connect.NewRequest(&deployv1.ListAuditEventsRequest{
				ActorKeyId: *actor, Action: *action, PageSize: int32(*limit),
			}))
			if err != nil {
				return err
			}
			return output(e, *out, res.Msg, func(w io.Writer) {
				fmt.Fprintln(w, "SEQ\tTIME\tACTOR\tACTION\tRESOURCE\tOUTCOME")
				for _, ev := range res.Msg.GetEvents() {
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", ev.GetSeq(), when(ev.GetTime()), dash(ev.GetActorKeyId()),
						ev.GetAction(), dash(ev.GetResource()), ev.GetOutcome())
				}
			})
		},
		"verify": func(ctx context.Context, e *Env, args []string) error {
			fs := flags(e, "audit verify")
			headFile := fs.String("head", "", "also check that the trail still holds the head saved in this file by `dotdo audit head`")
			resume := fs.Bool("resume", false, "walk only the events after the last verified checkpoint (a full walk from event 1 also catches changes before it)")
			out := fs.String("output", "table", "table or json (the response; a broken trail still exits 1)")
			if err := parse(fs, args); err != nil {
				return err
			}
			if err := checkOutput(*out); err != nil {
				return err
			}
			req := &deployv1.VerifyAuditLogRequest{FromCheckpoint: *resume}
			if *headFile != "" {
				h, err := readAuditHead(*headFile)
				if err != nil {
					return usagef("--head: %v", err)
				}
				req.Head = &dbv1.AuditHead{Seq: h.Seq, Hash: h.MAC}
			}
			res, err := e.newClients().admin.VerifyAuditLog(ctx, connect.NewRequest(req))
			if err != nil {
				return err
			}
			if *out == "json" {
				if err := output(e, *out, res.Msg, nil); err != nil {
					return err
				}
			}
			if !res.Msg.GetOk() {
				return fmt.Errorf("audit trail broken at event %d of %d checked: %s", res.Msg.GetFirstBrokenSeq(), res.Msg.GetChecked(), res.Msg.GetReason())
			}
			if *out == "json" {
				return nil
			}
			how := "hash-chained"
			if res.Msg.GetKeyed() {
				how = "keyed"
			}
			fmt.Fprintf(e.Stdout, "audit trail intact: %d events checked (%s)", res.Msg.GetChecked(), how)
			if from := res.Msg.GetFromSeq(); from > 0 {
				fmt.Fprintf(e.Stdout, "; resumed after the checkpoint at event %d", from)
			}
			if req.Head != nil {
				fmt.Fprintf(e.Stdout, "; it holds the head of %s (event %d)", *headFile, req.Head.GetSeq())
			}
			fmt.Fprintln(e.Stdout)
			return nil
		},
		"head": func(ctx context.Context, e *Env, args []string) error {
			if err := parse(flags(e, "audit head"), args); err != nil {
				return err
			}
			res, err := e.newClients().admin.GetAuditHead(ctx, connect.NewRequest(&deployv1.GetAuditHeadRequest{}))
			if err != nil {
				return err
			}
			b, err := json.Marshal(auditHeadFile{Seq: res.Msg.GetHead().GetSeq(), MAC: res.Msg.GetHead().GetHash(), Keyed: res.Msg.GetKeyed()})
			if err != nil {
				return err
			}
			fmt.Fprintln(e.Stdout, string(b))
			return nil
		},
	})
}

// auditHeadFile is what `dotdo audit head` prints and `dotdo audit verify
// --head` reads: the seq and MAC of the last event of the audit trail.
type auditHeadFile struct {
	Seq   int64  `json:"seq"`
	MAC   string `json:"mac"`
	Keyed bool   `json:"keyed"`
}

// readAuditHead reads a head saved from `dotdo audit head`.
func readAuditHead(path string) (auditHeadFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return auditHeadFile{}, err
	}
	var h auditHeadFile
	if err := json.Unmarshal(b, &h); err != nil || h.MAC == "" || h.Seq < 0 {
		return auditHeadFile{}, fmt.Errorf("%s holds no audit head (want the JSON `dotdo audit head` prints)", path)
	}
	return h, nil
}
