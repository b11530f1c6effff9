package authz

import (
	"errors"
	"testing"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/db/store"
)

func TestRolesAndPermissions(t *testing.T) {
	for _, r := range AllRoles() {
		got, err := ParseRole(r.String())
		if err != nil || got != r {
			t.Fatalf("ParseRole(%q) = %q, %v", r, got, err)
		}
	}
	for _, bad := range []string{"", "Admin", "root", " admin"} {
		if _, err := ParseRole(bad); !errors.Is(err, errkind.Invalid) {
			t.Errorf("ParseRole(%q) = %v, want errkind.Invalid", bad, err)
		}
	}
	for _, p := range AllPermissions() {
		got, err := ParsePermission(p.String())
		if err != nil || got != p {
			t.Fatalf("ParsePermission(%q) = %q, %v", p, got, err)
		}
		if !Grants(store.RoleAdmin, p) {
			t.Errorf("admin lacks %s", p)
		}
	}
	if _, err := ParsePermission("deployments.*"); !errors.Is(err, errkind.Invalid) {
		t.Error("ParsePermission accepted a wildcard")
	}
	if got := len(Permissions(store.RoleDeployer)); got != 7 || !Grants(store.RoleDeployer, PermRoutesRead) || Grants(store.RoleDeployer, PermRoutesWrite) ||
		!Grants(store.RoleDeployer, PermSecretsRead) || !Grants(store.RoleDeployer, PermSecretsWrite) {
		t.Errorf("deployer has %d permissions, want 7 with routes.read, secrets.read and secrets.write and without routes.write", got)
	}
	if ps := Permissions(store.RoleViewer); len(ps) != 4 || ps[0] != PermDeploymentsRead || ps[1] != PermLogsRead || ps[2] != PermRoutesRead || ps[3] != PermSecretsRead {
		t.Errorf("viewer permissions = %v", ps)
	}
	if Grants("root", PermDeploymentsRead) || Permissions("root") != nil {
		t.Error("unknown role grants permissions")
	}
	Permissions(store.RoleViewer)[0] = PermKeysManage // must not affect the policy
	if Grants(store.RoleViewer, PermKeysManage) {
		t.Fatal("Permissions() exposes the policy table")
	}
	if PermKeysManage.EnvironmentScoped() || PermAuditRead.EnvironmentScoped() || !PermDeploymentsCreate.EnvironmentScoped() || !PermNamespacesManage.EnvironmentScoped() {
		t.Error("EnvironmentScoped wrong")
	}
}

func TestPermissionErrorMessages(t *testing.T) {
	p := Principal{KeyID: "abc", Role: store.RoleDeployer, Environments: []string{"staging"}}
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
		if err == nil || err.Error() != c.want || !errors.Is(err, errkind.Permission) {
			t.Errorf("Check(%s, %q) = %v, want %q", c.perm, c.env, err, c.want)
		}
	}
	if err := p.Check(PermDeploymentsCreate, "staging"); err != nil {
		t.Errorf("staging deployer denied on staging: %v", err)
	}
}
