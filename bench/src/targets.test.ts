import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { handledCalls, startScriptFlags } from "./targets.ts";

describe("handledCalls", () => {
  it("sums one method's handled calls from Prometheus text, OK apart from the rest", () => {
    const metrics = [
      "# TYPE grpc_server_handled_total counter",
      'grpc_server_handled_total{grpc_type="unary",grpc_service="user.v1.UserService",grpc_method="GetUser",grpc_code="OK"} 120',
      'grpc_server_handled_total{grpc_type="unary",grpc_service="user.v1.UserService",grpc_method="GetUser",grpc_code="NotFound"} 2',
      'grpc_server_handled_total{grpc_code="Unauthenticated",grpc_method="GetUser",grpc_service="user.v1.UserService",grpc_type="unary"} 1',
      'grpc_server_handled_total{grpc_type="unary",grpc_service="user.v1.UserService",grpc_method="GetUsers",grpc_code="OK"} 7',
      'grpc_server_handled_total{grpc_type="unary",grpc_service="order.v1.OrderService",grpc_method="GetUser",grpc_code="OK"} 9',
      'grpc_server_started_total{grpc_type="unary",grpc_service="user.v1.UserService",grpc_method="GetUser"} 125',
    ].join("\n");
    assert.deepEqual(handledCalls(metrics, "user.v1.UserService/GetUser"), { ok: 120, notOk: 3 });
  });
});

describe("startScriptFlags", () => {
  it("takes the server's node flags from its package's start script", () => {
    const main = fileURLToPath(new URL("../../packages/server/dist/main.js", import.meta.url));
    assert.deepEqual(startScriptFlags(main), [
      "--max-semi-space-size=4",
      "--heap-growing-percent=20",
      "--no-allocation-site-pretenuring",
    ]);
  });

  it("finds none in a build whose start script has none (an older commit)", () => {
    const root = mkdtempSync(join(tmpdir(), "keel-flags-"));
    try {
      mkdirSync(join(root, "dist"));
      writeFileSync(
        join(root, "package.json"),
        JSON.stringify({ scripts: { start: "node dist/main.js" } }),
      );
      assert.deepEqual(startScriptFlags(join(root, "dist", "main.js")), []);
    } finally {
      rmSync(root, { recursive: true });
    }
  });
});
