// client.test.ts drives a running platform with the generated TypeScript
// client (gen/ts) and @connectrpc/connect-node: create a key, deploy, list,
// roll back. The Go end-to-end test (test/e2e) starts the platform and runs
// this file with DOTDO_API_URL and DOTDO_API_KEY set; without them it skips.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { DeployService, DeploymentStatus, DeploymentKind } from "../../gen/ts/dotdo/deploy/v1/deploy_pb.js";
import { AdminService } from "../../gen/ts/dotdo/deploy/v1/admin_pb.js";
import { Role } from "../../gen/ts/dotdo/auth/v1/auth_pb.js";

const baseUrl = process.env.DOTDO_API_URL;
const adminKey = process.env.DOTDO_API_KEY;
const skip = !baseUrl || !adminKey ? "needs a running platform: DOTDO_API_URL and DOTDO_API_KEY (test/e2e sets them)" : false;

function clients(key: string) {
  const bearer: Interceptor = (next) => (req) => {
    req.header.set("Authorization", `Bearer ${key}`);
    return next(req);
  };
  const transport = createConnectTransport({ baseUrl: baseUrl!, httpVersion: "1.1", interceptors: [bearer] });
  return { deploy: createClient(DeployService, transport), admin: createClient(AdminService, transport) };
}

const worker = (label: string) =>
  new TextEncoder().encode(`export default { fetch() { return new Response(${JSON.stringify(label)}) } }`);

test("create a key, deploy, list, roll back", { skip }, async () => {
  const admin = clients(adminKey!);
  const created = await admin.admin.createApiKey({ name: "ts-client", role: Role.DEPLOYER, environments: ["staging"] });
  assert.match(created.secret, /^dotdo_/);
  assert.equal(created.apiKey?.role, Role.DEPLOYER);

  const { deploy } = clients(created.secret);
  const first = await deploy.deploy({
    service: "ts-worker",
    environment: "staging",
    script: worker("one"),
    metadata: { commit: "abc123", branch: "main", author: "ts" },
  });
  assert.equal(first.deployment?.status, DeploymentStatus.LIVE);
  const second = await deploy.deploy({ service: "ts-worker", environment: "staging", script: worker("two") });
  assert.equal(second.deployment?.version, first.deployment!.version + 1n);

  const list = await deploy.listDeployments({ service: "ts-worker", environment: "staging" });
  assert.deepEqual(
    list.deployments.map((d) => d.status),
    [DeploymentStatus.LIVE, DeploymentStatus.SUPERSEDED],
  );

  const rb = await deploy.rollback({ service: "ts-worker", environment: "staging" });
  assert.equal(rb.deployment?.kind, DeploymentKind.ROLLBACK);
  assert.equal(rb.deployment?.restoredVersion, first.deployment!.version);

  // The key is limited to staging: production is refused.
  await assert.rejects(
    deploy.deploy({ service: "ts-worker", environment: "production", script: worker("x") }),
    (err: Error) => /permission/i.test(err.message),
  );
});
