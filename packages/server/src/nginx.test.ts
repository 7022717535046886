import assert from "node:assert/strict";
import { once } from "node:events";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { DescService, MessageInitShape } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { createUserClient, type UserClient } from "@keel/clients";
import { OrderService } from "@keel/gen/order/v1/order_pb";
import { UserService, UserStatus, type UserStatusUpdateSchema } from "@keel/gen/user/v1/user_pb";
import { freePort } from "./testing/free-port.ts";
import { eventually, findNginx, type Nginx, nginxConfig, startNginx } from "./testing/nginx.ts";
import { followLogs, runServer, type ServerProcess, servingUrl } from "./testing/process.ts";
import { read } from "./testing/repo.ts";
import { iterate, pushable, rejectsWith, take } from "./testing/rpc.ts";

// deploy/nginx/nginx.conf, read and then run for real in front of two server processes.

interface Instance {
  name: string;
  server: ServerProcess;
  env: Record<string, string>;
  /** host:port, as nginx names it in $upstream_addr. */
  upstream: string;
  url: string;
  logs: Record<string, unknown>[];
}

describe("deploy/nginx/nginx.conf", () => {
  const conf = read("deploy", "nginx", "nginx.conf");

  it("lifts the body limit for exactly the client-streaming and bidi methods", () => {
    const location = /location ~ (\S+) \{\s*client_max_body_size 0;/.exec(conf);
    assert.ok(location?.[1], "nginx.conf: no location with client_max_body_size 0");
    const streaming = new RegExp(location[1]);
    const services: DescService[] = [UserService, OrderService];
    for (const method of services.flatMap((s) => s.methods)) {
      const path = `/${method.parent.typeName}/${method.name}`;
      const clientStreams = ["client_streaming", "bidi_streaming"].includes(method.methodKind);
      assert.equal(streaming.test(path), clientStreams, path);
    }
  });

  it("keeps silent streams open for an hour in both directions", () => {
    for (const directive of ["grpc_read_timeout", "grpc_send_timeout", "client_body_timeout"]) {
      assert.match(conf, new RegExp(`^\\s*${directive} 1h;$`, "m"), directive);
    }
  });
});

const found = findNginx();
const password = "correct horse battery";

describe("nginx (deploy/nginx/nginx.conf) in front of two instances", {
  skip: found.skip ?? false,
}, () => {
  const secret = "one secret shared by both instances, 32+ characters";
  const dir = mkdtempSync(join(tmpdir(), "keel-nginx-"));
  // Run as root, nginx's workers are `nobody`: they must reach their temp directories.
  chmodSync(dir, 0o755);
  let instances: Instance[] = [];
  let proxy: Nginx | undefined;
  let baseUrl: string;
  let token: string;
  let users: UserClient;

  before(async () => {
    // Each instance has its own SQLite database. Both are seeded alike, directly: user 1 names its
    // instance (so an answer tells which instance gave it), user 2 is the same on both.
    instances = await Promise.all(
      ["a", "b"].map(async (name) => {
        const env = {
          KEEL_DATA_DIR: join(dir, name),
          KEEL_JWT_SECRET: secret,
          KEEL_PASSWORD_COST: "10",
          KEEL_ADMIN_PORT: "0",
          // A log line for every call, OK ones included: the tests look for their request ids.
          KEEL_LOG_LEVEL: "debug",
        };
        const server = runServer(env);
        const url = await servingUrl(server);
        return { name, server, env, url, upstream: new URL(url).host, logs: followLogs(server) };
      }),
    );
    const [first] = instances;
    assert.ok(first);
    const minted = await runServer(first.env, ["token", "--user-id", "1", "--roles", "admin"])
      .exited;
    assert.equal(minted.code, 0, minted.stderr);
    token = minted.stdout.trim();
    for (const instance of instances) {
      const direct = createUserClient({ baseUrl: instance.url, token });
      for (const username of [`instance-${instance.name}`, "shared"]) {
        await direct.createUser({ username, email: `${username}@example.com`, password });
      }
      const seeded = await direct.batchUpdateUsers(
        iterate([{ userId: 2n, user: { tags: ["seeded"] }, updateMask: { paths: ["tags"] } }]),
      );
      assert.equal(seeded.updatedCount, 1);
    }

    const port = await freePort();
    const upstreams = instances.map((i) => i.upstream);
    proxy = await startNginx(found.nginx ?? "", dir, nginxConfig(port, upstreams, dir), port);
    baseUrl = `http://127.0.0.1:${port}`;
    users = createUserClient({ baseUrl, token });
  });

  after(async () => {
    await proxy?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("passes unary calls: CreateUser and GetUser", async () => {
    const { user } = await users.createUser({
      username: "via-nginx",
      email: "via-nginx@example.com",
      password,
    });
    assert.equal(user?.username, "via-nginx");
    const { user: shared } = await users.getUser({ userId: 2n });
    assert.equal(shared?.username, "shared");
  });

  it("balances calls over both instances, as its access log and the answers agree", async () => {
    const nameOf = new Map(instances.map((i) => [i.upstream, `instance-${i.name}`]));
    const answeredBy = new Set<string>();
    for (let n = 0; n < 6; n++) {
      const requestId = `balance-${n}`;
      const { user } = await users.getUser(
        { userId: 1n },
        { headers: { "x-request-id": requestId } },
      );
      const entry = await proxy?.logged(requestId);
      assert.equal(user?.username, nameOf.get(entry?.upstream ?? ""), `call ${n}`);
      answeredBy.add(user?.username ?? "");
    }
    assert.deepEqual([...answeredBy].sort(), ["instance-a", "instance-b"]);
  });

  it("keeps the caller's x-request-id, and gives calls without one nginx's", async () => {
    const seen: (string | null)[] = [];
    const onHeader = (headers: Headers) => seen.push(headers.get("x-request-id"));
    await users.getUser({ userId: 2n }, { headers: { "x-request-id": "caller-chosen" }, onHeader });
    await users.getUser({ userId: 2n }, { onHeader });
    const [kept, made] = seen;
    assert.equal(kept, "caller-chosen");
    assert.match(made ?? "", /^[0-9a-f]{32}$/);
    // The instance logged the id nginx made, and so did nginx.
    assert.equal((await proxy?.logged(made ?? ""))?.path, "/user.v1.UserService/GetUser");
    await eventually("the instance's log line", () =>
      instances.flatMap((i) => i.logs).find((l) => l.request_id === made),
    );
  });

  it("passes a server stream, and the client's cancel on to the instance", async () => {
    const requestId = "activities-then-cancel";
    const controller = new AbortController();
    const activities = users
      .streamUserActivities(
        { userId: 2n },
        { signal: controller.signal, timeoutMs: 0, headers: { "x-request-id": requestId } },
      )
      [Symbol.asyncIterator]();
    const history = await take(activities, 2);
    assert.deepEqual(
      history.map((a) => a.action),
      ["user.created", "user.updated"],
    );
    controller.abort();
    await rejectsWith(activities.next(), Code.Canceled);
    // nginx reset its stream to the instance, which ended the call as cancelled.
    assert.ok(await proxy?.logged(requestId));
    const line = await eventually("the instance's log line", () =>
      instances.flatMap((i) => i.logs).find((l) => l.request_id === requestId),
    );
    assert.equal(line.code, "Canceled");
  });

  it("passes a client stream: BatchUpdateUsers", async () => {
    const result = await users.batchUpdateUsers(
      iterate([
        { userId: 2n, user: { metadata: { via: "nginx" } }, updateMask: { paths: ["metadata"] } },
        { userId: 2n, user: { tags: ["seeded", "batched"] }, updateMask: { paths: ["tags"] } },
        { userId: 999n, user: { tags: ["nobody"] }, updateMask: { paths: ["tags"] } },
      ]),
    );
    assert.equal(result.updatedCount, 2);
    assert.equal(result.errors.length, 1);
    assert.match(result.errors[0] ?? "", /^update #3 \(user_id=999\)/);
  });

  it("passes client streams of more than 4 MiB in all, and refuses a unary call that big", async () => {
    // Five messages of 1 MiB (each refused by validation, which does not end the stream).
    const big = { userId: 2n, user: { metadata: { big: "x".repeat(1 << 20) } } };
    const result = await users.batchUpdateUsers(
      iterate([big, big, big, big, big, { userId: 2n, user: { tags: ["seeded"] } }]),
    );
    assert.deepEqual([result.updatedCount, result.errors.length], [1, 5]);

    // Refused by nginx or by the instance, whichever reads enough of it first.
    const roomy = createUserClient({ baseUrl, token, maxMessageBytes: 8 << 20 });
    await rejectsWith(
      roomy.getUser({ userId: 2n, fields: ["x".repeat(5 << 20)] }),
      Code.ResourceExhausted,
    );
  });

  it("answers its own refusals with a gRPC status: 413 is RESOURCE_EXHAUSTED", async () => {
    // A body announced too large is refused before nginx reads it, never reaching an instance.
    const session = http2.connect(baseUrl);
    try {
      const request = session.request({
        ":method": "POST",
        ":path": "/user.v1.UserService/GetUser",
        "content-type": "application/grpc",
        "content-length": String(5 << 20),
        te: "trailers",
      });
      const [headers] = (await once(request, "response")) as [http2.IncomingHttpHeaders];
      request.destroy();
      assert.equal(headers[":status"], 200);
      assert.equal(headers["grpc-status"], "8");
      assert.equal(headers["grpc-message"], "request larger than 4 MiB");
      assert.match(String(headers["x-request-id"]), /^[0-9a-f]{32}$/);
    } finally {
      session.close();
    }
  });

  it("passes Connect and gRPC-Web over HTTP/2 as well", async () => {
    for (const protocol of ["connect", "grpc-web"] as const) {
      const client = createUserClient({ baseUrl, token, protocol });
      assert.equal((await client.getUser({ userId: 2n })).user?.username, "shared", protocol);
      const controller = new AbortController();
      const activities = client
        .streamUserActivities({ userId: 2n }, { signal: controller.signal, timeoutMs: 0 })
        [Symbol.asyncIterator]();
      assert.equal((await take(activities, 1))[0]?.action, "user.created", protocol);
      controller.abort();
    }
  });

  it("passes a bidi stream: SyncUserStatus follows and updates in one call", async () => {
    const out = pushable<MessageInitShape<typeof UserStatusUpdateSchema>>();
    const sync = users.syncUserStatus(out, { timeoutMs: 0 })[Symbol.asyncIterator]();
    out.push({ userId: 2n });
    assert.equal((await take(sync, 1))[0]?.status, UserStatus.ACTIVE);
    // Answers arrive while the client still sends: nginx buffers neither direction.
    // An update is not echoed to its sender; following again answers the status it set.
    out.push({ userId: 2n, status: UserStatus.SUSPENDED });
    out.push({ userId: 2n });
    assert.equal((await take(sync, 1))[0]?.status, UserStatus.SUSPENDED);
    out.push({ userId: 2n, status: UserStatus.ACTIVE });
    out.end();
    assert.equal((await sync.next()).done, true);
  });

  // Last: it stops the instances.
  it("answers UNAVAILABLE itself when no instance answers", async () => {
    for (const { server } of instances) {
      process.kill(server.child.pid as number, "SIGKILL");
      await server.exited;
    }
    await rejectsWith(
      users.getUser({ userId: 2n }),
      Code.Unavailable,
      /^no keel-server instance answered$/,
    );
  });
});
