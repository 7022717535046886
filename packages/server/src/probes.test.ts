import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createClient } from "@connectrpc/connect";
import { createTransport } from "@keel/clients";
import { Health, HealthCheckResponse_ServingStatus } from "@keel/gen/health/v1/health_pb";
import { Deployment } from "kubernetes-models/apps/v1";
import { runHealthcheck } from "./testing/dockerfile.ts";
import { freePort } from "./testing/free-port.ts";
import { manifests, model } from "./testing/kubernetes.ts";
import { runServer, servingUrl } from "./testing/process.ts";

// The probes of deploy/kubernetes/deployment.yaml and deploy/Dockerfile's HEALTHCHECK, against a
// real server.

describe("the probes of deployment.yaml and the image's HEALTHCHECK, on a real instance", () => {
  const dir = mkdtempSync(join(tmpdir(), "keel-probes-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("answers them all: gRPC health on the API port, /healthz and /readyz on the admin port", async () => {
    const container = model(manifests(), "deployment.yaml", Deployment).spec?.template.spec
      ?.containers[0];
    const adminPort = await freePort();
    const server = runServer({
      KEEL_DATA_DIR: dir,
      KEEL_ADMIN_PORT: String(adminPort),
      KEEL_PASSWORD_COST: "10",
    });
    // What the kubelet's grpc probe asks: Check for the probe's service, over HTTP/2 cleartext.
    const health = createClient(Health, createTransport({ baseUrl: await servingUrl(server) }));
    const service = container?.readinessProbe?.grpc?.service ?? "";
    const { status } = await health.check({ service });
    assert.equal(status, HealthCheckResponse_ServingStatus.SERVING);
    for (const path of [container?.livenessProbe?.httpGet?.path, "/readyz"]) {
      const res = await fetch(`http://127.0.0.1:${adminPort}${path}`);
      assert.equal(res.status, 200, path);
    }
    assert.equal(await runHealthcheck(adminPort), 0);
    process.kill(server.child.pid as number, "SIGTERM");
    assert.equal((await server.exited).code, 0);
  });
});
