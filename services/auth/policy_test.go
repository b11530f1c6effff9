package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/auth/authz"
	"github.com/dot-do/platform/services/db/store"
)

// subjects are every role in every environment scope.
var subjects = []struct {
	name string
	role store.Role
	envs []string
}{
	{"admin/all", store.RoleAdmin, nil},
	{"admin/staging", store.RoleAdmin, []string{"staging"}},
	{"deployer/all", store.RoleDeployer, nil},
	{"deployer/staging", store.RoleDeployer, []string{"staging"}},
	{"viewer/all", store.RoleViewer, nil},
	{"viewer/staging", store.RoleViewer, []string{"staging"}},
}

// allow builds the expected-outcome set of a table row.
func allow(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

// TestAuthorizePolicyTable checks every permission and environment against
// every role and scope through the full Authorize path, with the expected
// outcomes written out by hand (not derived from the policy code).
func TestAuthorizePolicyTable(t *testing.T) {
	h := newHarness(t)
	tokens := map[string]string{}
	for _, s := range subjects {
		k, _ := h.create(s.name, s.role, s.envs, 0)
		tokens[s.name] = k.Token
	}
	everyone := allow("admin/all", "admin/staging", "deployer/all", "deployer/staging", "viewer/all", "viewer/staging")
	deployers := allow("admin/all", "admin/staging", "deployer/all", "deployer/staging")
	unscoped := allow("admin/all", "deployer/all")
	admins := allow("admin/all", "admin/staging")

	rows := []struct {
		perm  authz.Permission
		env   string
		allow map[string]bool
	}{
		{authz.PermDeploymentsCreate, "staging", deployers},
		{authz.PermDeploymentsCreate, "production", unscoped},
		{authz.PermDeploymentsCreate, "", unscoped},
		{authz.PermDeploymentsRollback, "staging", deployers},
		{authz.PermDeploymentsRollback, "production", unscoped},
		{authz.PermDeploymentsRead, "staging", everyone},
		{authz.PermDeploymentsRead, "production", allow("admin/all", "deployer/all", "viewer/all")},
		{authz.PermDeploymentsRead, "", allow("admin/all", "deployer/all", "viewer/all")},
		{authz.PermNamespacesManage, "staging", admins},
		{authz.PermNamespacesManage, "production", allow("admin/all")},
		{authz.PermKeysManage, "", admins},
		{authz.PermKeysManage, "production", admins}, // not environment-scoped: env ignored
		{authz.PermAuditRead, "", admins},
		{authz.PermLogsRead, "staging", everyone},
		{authz.PermLogsRead, "production", allow("admin/all", "deployer/all", "viewer/all")},
		{authz.PermSecretsRead, "staging", everyone},
		{authz.PermSecretsRead, "production", allow("admin/all", "deployer/all", "viewer/all")},
		{authz.PermSecretsWrite, "staging", deployers},
		{authz.PermSecretsWrite, "production", unscoped},
		{authz.Permission("deployments.delete"), "staging", allow()},
	}
	for _, row := range rows {
		for _, s := range subjects {
			t.Run(fmt.Sprintf("%s@%s/%s", row.perm, row.env, s.name), func(t *testing.T) {
				p, err := h.svc.Authorize(context.Background(), tokens[s.name], row.perm, row.env, "table")
				if row.allow[s.name] {
					if err != nil {
						t.Fatalf("want allowed, got %v", err)
					}
					if p.Name != s.name || p.Role != s.role {
						t.Fatalf("principal = %+v", p)
					}
					return
				}
				var pe *authz.PermissionError
				if !errors.Is(err, errkind.Permission) || !errors.As(err, &pe) {
					t.Fatalf("want PermissionDenied, got %v", err)
				}
				if p.KeyID != "" {
					t.Fatalf("denied call returned principal %+v", p)
				}
				msg := err.Error()
				if !strings.Contains(msg, `"`+string(row.perm)+`"`) || !strings.Contains(msg, pe.KeyID) {
					t.Fatalf("message %q does not name key and permission", msg)
				}
				envReason := authz.Grants(s.role, row.perm)
				if envReason && row.env != "" && !strings.Contains(msg, `on environment "`+row.env+`"`) {
					t.Fatalf("message %q does not name the environment", msg)
				}
				if !envReason && strings.Contains(msg, "environment") && row.perm.Valid() {
					t.Fatalf("message %q blames the environment for a role denial", msg)
				}
			})
		}
	}
	if n := len(h.sink.with(ActionAuthorize, OutcomeDenied)); n == 0 {
		t.Fatal("permission denials were not audited")
	}
}

// TestKeyManagementPolicyTable checks the key-management operations against
// every role and scope.
func TestKeyManagementPolicyTable(t *testing.T) {
	ctx := context.Background()
	type op struct {
		name  string
		run   func(h *harness, actor authz.Principal) error
		allow map[string]bool
	}
	target := func(h *harness, envs []string) string {
		_, rec := h.create("target", store.RoleViewer, envs, 0)
		return rec.KeyID
	}
	ops := []op{
		{"create staging key", func(h *harness, a authz.Principal) error {
			_, _, err := h.svc.CreateKey(ctx, a, "k", store.RoleDeployer, []string{"staging"}, 0)
			return err
		}, allow("admin/all", "admin/staging")},
		{"create production key", func(h *harness, a authz.Principal) error {
			_, _, err := h.svc.CreateKey(ctx, a, "k", store.RoleDeployer, []string{"production"}, 0)
			return err
		}, allow("admin/all")},
		{"create unrestricted key", func(h *harness, a authz.Principal) error {
			_, _, err := h.svc.CreateKey(ctx, a, "k", store.RoleViewer, nil, 0)
			return err
		}, allow("admin/all")},
		{"create admin key", func(h *harness, a authz.Principal) error {
			_, _, err := h.svc.CreateKey(ctx, a, "k", store.RoleAdmin, []string{"staging"}, 0)
			return err
		}, allow("admin/all", "admin/staging")},
		{"list keys", func(h *harness, a authz.Principal) error {
			_, err := h.svc.ListKeys(ctx, a, true)
			return err
		}, allow("admin/all", "admin/staging")},
		{"get staging key", func(h *harness, a authz.Principal) error {
			_, err := h.svc.GetKey(ctx, a, target(h, []string{"staging"}))
			return err
		}, allow("admin/all", "admin/staging")},
		{"revoke staging key", func(h *harness, a authz.Principal) error {
			_, err := h.svc.RevokeKey(ctx, a, target(h, []string{"staging"}))
			return err
		}, allow("admin/all", "admin/staging")},
		{"revoke production key", func(h *harness, a authz.Principal) error {
			_, err := h.svc.RevokeKey(ctx, a, target(h, []string{"production"}))
			return err
		}, allow("admin/all")},
		{"revoke unrestricted key", func(h *harness, a authz.Principal) error {
			_, err := h.svc.RevokeKey(ctx, a, target(h, nil))
			return err
		}, allow("admin/all")},
		{"rotate staging key", func(h *harness, a authz.Principal) error {
			_, _, _, err := h.svc.RotateKey(ctx, a, target(h, []string{"staging"}), 0)
			return err
		}, allow("admin/all", "admin/staging")},
		{"rotate production key", func(h *harness, a authz.Principal) error {
			_, _, _, err := h.svc.RotateKey(ctx, a, target(h, []string{"production"}), 0)
			return err
		}, allow("admin/all")},
		{"set expiry of staging key", func(h *harness, a authz.Principal) error {
			_, err := h.svc.SetKeyExpiry(ctx, a, target(h, []string{"staging"}), time.Time{})
			return err
		}, allow("admin/all", "admin/staging")},
	}
	for _, o := range ops {
		for _, s := range subjects {
			t.Run(o.name+"/"+s.name, func(t *testing.T) {
				h := newHarness(t)
				k, _ := h.create(s.name, s.role, s.envs, 0)
				actor := h.mustAuth(k.Token)
				err := o.run(h, actor)
				if o.allow[s.name] {
					if err != nil {
						t.Fatalf("want allowed, got %v", err)
					}
					return
				}
				if !errors.Is(err, errkind.Permission) {
					t.Fatalf("want PermissionDenied, got %v", err)
				}
			})
		}
	}
}

func TestListKeysFiltersByScope(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.create("prod", store.RoleDeployer, []string{"production"}, 0)
	h.clock.Advance(time.Second)
	_, stg := h.create("stg", store.RoleDeployer, []string{"staging"}, 0)
	h.clock.Advance(time.Second)
	k, stgAdmin := h.create("stg-admin", store.RoleAdmin, []string{"staging"}, 0)
	actor := h.mustAuth(k.Token)
	got, err := h.svc.ListKeys(ctx, actor, false)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range got {
		ids = append(ids, r.KeyID)
		if r.SecretHash != nil {
			t.Fatal("ListKeys returned a secret hash")
		}
	}
	if len(ids) != 2 || ids[0] != stg.KeyID || ids[1] != stgAdmin.KeyID {
		t.Fatalf("staging admin sees %v, want [%s %s]", ids, stg.KeyID, stgAdmin.KeyID)
	}
	all, err := h.svc.ListKeys(ctx, h.admin, false)
	if err != nil || len(all) != 4 {
		t.Fatalf("admin sees %d keys (%v), want 4", len(all), err)
	}
}
