// descriptor.test.ts checks that the generated TypeScript code describes the
// services as the protos do: the DeployService descriptor, its methods, its
// doc comments, and JSON round trips of the original deploy body.
import { test } from "node:test";
import assert from "node:assert/strict";
import { create, fromJson, toJson } from "@bufbuild/protobuf";
import {
  DeployService,
  DeployRequestSchema,
  DeploymentStatus,
} from "../../gen/ts/dotdo/deploy/v1/deploy_pb.js";
import { AdminService } from "../../gen/ts/dotdo/deploy/v1/admin_pb.js";
import { AuthService } from "../../gen/ts/dotdo/auth/v1/auth_pb.js";
import { DBService } from "../../gen/ts/dotdo/db/v1/db_pb.js";
import { SecretService } from "../../gen/ts/dotdo/deploy/v1/secrets_pb.js";

test("DeployService descriptor lists every RPC", () => {
  assert.equal(DeployService.typeName, "dotdo.deploy.v1.DeployService");
  const names = DeployService.methods.map((m) => m.name).sort();
  assert.deepEqual(names, [
    "Deploy",
    "EnsureNamespaces",
    "GetDeployment",
    "GetServiceInfo",
    "Health",
    "ListDeployments",
    "ListNamespaces",
    "Rollback",
    "TriggerScheduled",
  ]);
  assert.equal(DeployService.method.deploy.input, DeployRequestSchema);
});

test("the other services are generated", () => {
  assert.equal(AdminService.typeName, "dotdo.deploy.v1.AdminService");
  assert.equal(AuthService.typeName, "dotdo.auth.v1.AuthService");
  assert.equal(DBService.typeName, "dotdo.db.v1.DBService");
  assert.equal(SecretService.typeName, "dotdo.deploy.v1.SecretService");
});

test("the original deploy body parses unchanged", () => {
  const body = {
    service: "gateway",
    environment: "production",
    script: Buffer.from("export default {}").toString("base64"),
    metadata: { commit: "abc123", branch: "main", author: "github-actions" },
  };
  const req = fromJson(DeployRequestSchema, body);
  assert.equal(req.service, "gateway");
  assert.equal(new TextDecoder().decode(req.script), "export default {}");
  assert.equal(req.metadata?.author, "github-actions");
  assert.deepEqual(toJson(DeployRequestSchema, req), body);
});

test("enums have an unspecified zero value", () => {
  assert.equal(DeploymentStatus.UNSPECIFIED, 0);
  assert.equal(create(DeployRequestSchema).service, "");
});
