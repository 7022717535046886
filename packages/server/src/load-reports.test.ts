import assert from "node:assert/strict";
import { syncBuiltinESMExports } from "node:module";
import perfHooks from "node:perf_hooks";
import { after, before, describe, it, mock } from "node:test";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { loadReportTrailer } from "@keel/interceptors";
import { startTestServer } from "./testing/test-server.ts";

// Every answer of the server, over the engine's gRPC and over Connect, errors included, carries
// the ORCA load report that clients' weighted round robin reads.
let server: Awaited<ReturnType<typeof startTestServer>>;
before(async () => {
  server = await startTestServer();
});
after(() => server.stop());

describe("load reports", () => {
  for (const [name, transport] of [
    ["gRPC", () => createGrpcTransport({ baseUrl: server.url })],
    [
      "Connect over HTTP/1.1",
      () => createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" }),
    ],
  ] as const) {
    it(`come with answers and errors over ${name}`, async () => {
      const users = createClient(UserService, transport());
      const header = { authorization: `Bearer ${server.adminToken}` };
      let trailer: Headers | undefined;
      await assert.rejects(
        users.getUser({ userId: 999_999n }, { headers: header, onTrailer: (t) => (trailer = t) }),
        (err: unknown) => {
          assert.ok(err instanceof ConnectError);
          assert.equal(err.code, Code.NotFound);
          assert.match(err.metadata.get(loadReportTrailer) ?? "", /^[A-Za-z0-9+/]+=*$/);
          return true;
        },
      );
      await users.listUsers({ pageSize: 1 }, { headers: header, onTrailer: (t) => (trailer = t) });
      assert.match(trailer?.get(loadReportTrailer) ?? "", /^[A-Za-z0-9+/]+=*$/);
    });
  }
});

describe("load sampling", () => {
  it("runs one event-loop delay monitor for load reports and load shedding together", async () => {
    // Counted where the samplers get it: the module's own export, which their imports follow.
    const monitors = mock.method(perfHooks, "monitorEventLoopDelay");
    syncBuiltinESMExports();
    try {
      const made = async (options: Parameters<typeof startTestServer>[0]) => {
        const before = monitors.mock.callCount();
        const s = await startTestServer(options);
        await s.stop();
        return monitors.mock.callCount() - before;
      };
      // Whatever else the server monitors (its metrics' own event-loop lag) is in every count.
      const neither = await made({ loadReports: false });
      assert.equal((await made({})) - neither, 1, "load reports alone");
      assert.equal((await made({ loadReports: false, loadShedding: {} })) - neither, 1, "shedding");
      assert.equal((await made({ loadShedding: {} })) - neither, 1, "load reports and shedding");
    } finally {
      monitors.mock.restore();
      syncBuiltinESMExports();
    }
  });
});
