package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// subjects are every role in every environment scope.
var subjects = []struct {
	name string
	role Role
	envs []string
}{
	{"admin/all", RoleAdmin, nil},
	{"admin/staging", RoleAdmin, []string{"staging"}},
	{"deployer/all", RoleDeployer, nil},
	{"deployer/staging", RoleDeployer, []string{"staging"}},
	{"viewer/all", RoleViewer, nil},
	{"viewer/staging", RoleViewer, []string{"staging"}},
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
		perm  Permission
		env   string
		allow map[string]bool
	}{
		{PermDeploymentsCreate, "staging", deployers},
		{PermDeploymentsCreate, "production", unscoped},
		{PermDeploymentsCreate, "", unscoped},
		{PermDeploymentsRollback, "staging", deployers},
		{PermDeploymentsRollback, "production", unscoped},
		{PermDeploymentsRead, "staging", everyone},
		{PermDeploymentsRead, "production", allow("admin/all", "deployer/all", "viewer/all")},
		{PermDeploymentsRead, "", allow("admin/all", "deployer/all", "viewer/all")},
		{PermNamespacesManage, "staging", admins},
		{PermNamespacesManage, "production", allow("admin/all")},
		{PermKeysManage, "", admins},
		{PermKeysManage, "production", admins}, // not environment-scoped: env ignored
		{PermAuditRead, "", admins},
		{Permission("deployments.delete"), "staging", allow()},
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
				var pe *PermissionError
				if !errors.Is(err, ErrPermissionDenied) || !errors.As(err, &pe) {
					t.Fatalf("want PermissionDenied, got %v", err)
				}
				if p.KeyID != "" {
					t.Fatalf("denied call returned principal %+v", p)
				}
				msg := err.Error()
				if !strings.Contains(msg, `"`+string(row.perm)+`"`) || !strings.Contains(msg, pe.KeyID) {
					t.Fatalf("message %q does not name key and permission", msg)
				}
				envReason := s.role.Has(row.perm)
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
		run   func(h *harness, actor Principal) error
		allow map[string]bool
	}
	target := func(h *harness, envs []string) string {
		_, rec := h.create("target", RoleViewer, envs, 0)
		return rec.KeyID
	}
	ops := []op{
		{"create staging key", func(h *harness, a Principal) error {
			_, _, err := h.svc.CreateKey(ctx, a, "k", RoleDeployer, []string{"staging"}, 0)
			return err
		}, allow("admin/all", "admin/staging")},
		{"create production key", func(h *harness, a Principal) error {
			_, _, err := h.svc.CreateKey(ctx, a, "k", RoleDeployer, []string{"production"}, 0)
			return err
		}, allow("admin/all")},
		{"create unrestricted key", func(h *harness, a Principal) error {
			_, _, err := h.svc.CreateKey(ctx, a, "k", RoleViewer, nil, 0)
			return err
		}, allow("admin/all")},
		{"create admin key", func(h *harness, a Principal) error {
			_, _, err := h.svc.CreateKey(ctx, a, "k", RoleAdmin, []string{"staging"}, 0)
			return err
		}, allow("admin/all", "admin/staging")},
		{"list keys", func(h *harness, a Principal) error {
			_, err := h.svc.ListKeys(ctx, a, true)
			return err
		}, allow("admin/all", "admin/staging")},
		{"get staging key", func(h *harness, a Principal) error {
			_, err := h.svc.GetKey(ctx, a, target(h, []string{"staging"}))
			return err
		}, allow("admin/all", "admin/staging")},
		{"revoke staging key", func(h *harness, a Principal) error {
			_, err := h.svc.RevokeKey(ctx, a, target(h, []string{"staging"}))
			return err
		}, allow("admin/all", "admin/staging")},
		{"revoke production key", func(h *harness, a Principal) error {
			_, err := h.svc.RevokeKey(ctx, a, target(h, []string{"production"}))
			return err
		}, allow("admin/all")},
		{"revoke unrestricted key", func(h *harness, a Principal) error {
			_, err := h.svc.RevokeKey(ctx, a, target(h, nil))
			return err
		}, allow("admin/all")},
		{"rotate staging key", func(h *harness, a Principal) error {
			_, _, _, err := h.svc.RotateKey(ctx, a, target(h, []string{"staging"}), 0)
			return err
		}, allow("admin/all", "admin/staging")},
		{"rotate production key", func(h *harness, a Principal) error {
			_, _, _, err := h.svc.RotateKey(ctx, a, target(h, []string{"production"}), 0)
			return err
		}, allow("admin/all")},
		{"set expiry of staging key", func(h *harness, a Principal) error {
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
				if !errors.Is(err, ErrPermissionDenied) {
					t.Fatalf("want PermissionDenied, got %v", err)
				}
			})
		}
	}
}

func TestListKeysFiltersByScope(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.create("prod", RoleDeployer, []string{"production"}, 0)
	h.clock.Advance(time.Second)
	_, stg := h.create("stg", RoleDeployer, []string{"staging"}, 0)
	h.clock.Advance(time.Second)
	k, stgAdmin := h.create("stg-admin", RoleAdmin, []string{"staging"}, 0)
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

func TestRolesAndPermissions(t *testing.T) {
	for _, r := range AllRoles() {
		got, err := ParseRole(r.String())
		if err != nil || got != r {
			t.Fatalf("ParseRole(%q) = %q, %v", r, got, err)
		}
	}
	for _, bad := range []string{"", "Admin", "root", " admin"} {
		if _, err := ParseRole(bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ParseRole(%q) = %v, want ErrInvalidArgument", bad, err)
		}
	}
	for _, p := range AllPermissions() {
		got, err := ParsePermission(p.String())
		if err != nil || got != p {
			t.Fatalf("ParsePermission(%q) = %q, %v", p, got, err)
		}
		if !RoleAdmin.Has(p) {
			t.Errorf("admin lacks %s", p)
		}
	}
	if _, err := ParsePermission("deployments.*"); !errors.Is(err, ErrInvalidArgument) {
		t.Error("ParsePermission accepted a wildcard")
	}
	if got := len(RoleDeployer.Permissions()); got != 3 {
		t.Errorf("deployer has %d permissions, want 3", got)
	}
	if ps := RoleViewer.Permissions(); len(ps) != 1 || ps[0] != PermDeploymentsRead {
		t.Errorf("viewer permissions = %v", ps)
	}
	if Role("root").Has(PermDeploymentsRead) || Role("root").Permissions() != nil {
		t.Error("unknown role grants permissions")
	}
	RoleViewer.Permissions()[0] = PermKeysManage // must not affect the policy
	if RoleViewer.Has(PermKeysManage) {
		t.Fatal("Permissions() exposes the policy table")
	}
	if PermKeysManage.EnvironmentScoped() || PermAuditRead.EnvironmentScoped() || !PermDeploymentsCreate.EnvironmentScoped() || !PermNamespacesManage.EnvironmentScoped() {
		t.Error("EnvironmentScoped wrong")
	}
}

func TestPermissionErrorMessages(t *testing.T) {
	p := Principal{KeyID: "abc", Role: RoleDeployer, Environments: []string{"staging"}}
	cases := []struct {
		perm Permission
		env  string
		want string
	}{
		{PermDeploymentsCreate, "production", `key "abc" lacks permission "deployments.create" on environment "production"`},
		{PermKeysManage, "", `key "abc" lacks permission "keys.manage" (role "deployer")`},
		{PermDeploymentsRead, "", `key "abc" lacks permission "deployments.read" on all environments (the key is limited to specific environments; name one)`},
		{Permission("x"), "staging", `key "abc" lacks unknown permission "x"`},
	}
	for _, c := range cases {
		err := p.Check(c.perm, c.env)
		if err == nil || err.Error() != c.want || !errors.Is(err, ErrPermissionDenied) {
			t.Errorf("Check(%s, %q) = %v, want %q", c.perm, c.env, err, c.want)
		}
	}
	if err := p.Check(PermDeploymentsCreate, "staging"); err != nil {
		t.Errorf("staging deployer denied on staging: %v", err)
	}
}
