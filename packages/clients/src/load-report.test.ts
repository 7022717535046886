import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { Health } from "@keel/gen/health/v1/health_pb";
import { loadReportTrailer, readLoadReport } from "./load-report.ts";

// A grpc-js server records a call's load with its own ORCA recorder; the report that reaches a
// Connect client in the trailers reads back as recorded.
describe("readLoadReport", () => {
  const server = new grpc.Server({ "grpc.server_call_metric_recording": 1 });
  let url = "";

  before(async () => {
    const check: grpc.handleUnaryCall<Buffer, Buffer> = (call, callback) => {
      const recorder = call.getMetricsRecorder();
      recorder.recordCPUUtilizationMetric(0.75);
      recorder.recordApplicationUtilizationMetric(0.5);
      recorder.recordQpsMetric(312.5);
      recorder.recordEpsMetric(2.25);
      recorder.recordNamedMetric("in_flight", 3);
      recorder.recordUtilizationMetric("event_loop", 0.4);
      callback(null, Buffer.from([8, 1])); // status: SERVING
    };
    server.addService(
      {
        check: {
          path: "/grpc.health.v1.Health/Check",
          requestStream: false,
          responseStream: false,
          requestSerialize: (b: Buffer) => b,
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (b: Buffer) => b,
          responseDeserialize: (b: Buffer) => b,
        },
      },
      { check },
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    url = `http://127.0.0.1:${port}`;
  });
  after(() => server.forceShutdown());

  it("reads what grpc-js's ORCA recorder sent", async () => {
    let trailer: Headers | undefined;
    const client = createClient(Health, createGrpcTransport({ baseUrl: url }));
    await client.check({}, { onTrailer: (t) => (trailer = t) });
    const value = trailer?.get(loadReportTrailer);
    assert.ok(value, "the trailer is there");
    assert.deepEqual(readLoadReport(value), {
      cpuUtilization: 0.75,
      rpsFractional: 312.5,
      eps: 2.25,
      applicationUtilization: 0.5,
    });
  });

  it("says undefined for a value that is not a report", () => {
    assert.equal(readLoadReport("%%%"), undefined);
    assert.equal(readLoadReport(Buffer.from([0x0a, 0x05, 0x01]).toString("base64")), undefined);
  });
});
