import assert from "node:assert/strict";
import { execFile, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { followLogs, runServer, type ServerProcess, servingUrl } from "./testing/process.ts";
import { root } from "./testing/repo.ts";
import { findSystemTool } from "./testing/system-tool.ts";
import { mintToken } from "./testing/test-server.ts";

// Every RPC of both services from grpc's C-core (Debian's python3-grpcio): a client that shares no
// code with the server or with connect. testing/grpcio/grpcio_client.py makes the calls and prints
// what it observed, one JSON line per case; the expectations are here, one test per case.

const python = "/usr/bin/python3";
const client = fileURLToPath(new URL("testing/grpcio/grpcio_client.py", import.meta.url));

/** Debian's python3 with grpc and protobuf, and protoc; or why the tests skip (fail in CI). */
function findGrpcio(): { protoc: string; skip?: undefined } | { skip: string } {
  const protoc = findSystemTool("protoc");
  if (protoc.skip !== undefined) return { skip: protoc.skip };
  const probe = spawnSync(python, ["-c", "import grpc, google.protobuf"], { encoding: "utf8" });
  if (probe.status === 0) return { protoc: protoc.path };
  const reason = `${python} cannot import grpc and google.protobuf (scripts/ci-system-deps.sh installs python3-grpcio and python3-protobuf)`;
  if (process.env.CI === "true") throw new Error(`${reason}; CI must run the tests that need it.`);
  return { skip: reason };
}

/** What a case must observe: values compared exactly, a RegExp matched against a string. */
type Expected = string | number | boolean | RegExp | Expected[] | { [key: string]: Expected };

function assertObserved(observed: unknown, expected: Expected, path: string) {
  if (expected instanceof RegExp) {
    assert.equal(typeof observed, "string", `${path}: ${JSON.stringify(observed)}`);
    assert.match(observed as string, expected, path);
  } else if (Array.isArray(expected)) {
    assert.ok(Array.isArray(observed), `${path}: ${JSON.stringify(observed)} is not a list`);
    assert.equal(observed.length, expected.length, `${path}: ${JSON.stringify(observed)}`);
    expected.forEach((e, i) => {
      assertObserved(observed[i], e, `${path}[${i}]`);
    });
  } else if (typeof expected === "object") {
    assert.ok(observed !== null && typeof observed === "object", `${path}: not an object`);
    assert.deepEqual(Object.keys(observed).sort(), Object.keys(expected).sort(), path);
    for (const [key, value] of Object.entries(expected)) {
      assertObserved((observed as Record<string, unknown>)[key], value, `${path}.${key}`);
    }
  } else {
    assert.equal(observed, expected, path);
  }
}

const status = (code: string, message: RegExp) => ({ code, message });

/** Each case of grpcio_client.py, in the order it runs them, and what C-core must see. */
const cases: Record<string, Expected> = {
  create_user: {
    username_is_sent: true,
    email_is_sent: true,
    has_id: true,
    status: "USER_STATUS_ACTIVE",
    tags: ["c-core", "python"],
    has_created_at: true,
  },
  create_user_already_exists: status("ALREADY_EXISTS", /^username: already taken/),
  create_user_invalid_argument: status(
    "INVALID_ARGUMENT",
    /^invalid request: username: must be 3 to 32 .*; email: .*; password: must be 8 to 128/,
  ),
  login: { token_type: "Bearer", user_id_matches: true, has_tokens: true, expiry_ordered: true },
  login_wrong_password: status("UNAUTHENTICATED", /^invalid username or password$/),
  refresh_token: {
    rotated: true,
    user_id_matches: true,
    reuse: status("UNAUTHENTICATED", /^refresh token was already used; every session/),
  },
  // `fields` limits the answer: no email, no status.
  get_user_with_fields: {
    username_matches: true,
    tags: ["c-core", "python"],
    email: "",
    status: "USER_STATUS_UNSPECIFIED",
  },
  get_user_as_owner: { email_matches: true },
  get_user_not_found: status("NOT_FOUND", /^user 9000000000 not found$/),
  get_user_unauthenticated: status("UNAUTHENTICATED", /^missing access token; send `authorization/),
  get_user_permission_denied: status(
    "PERMISSION_DENIED",
    /^permission denied: user\.v1\.UserService\/GetUser acts on user \d+ that is not yours/,
  ),
  list_users_paging: { pages_at_least_3: true, no_duplicates: true, all_created_listed: true },
  unknown_method: {
    method: status("UNIMPLEMENTED", /^unknown method Nope for service user\.v1\.UserService$/),
    service: status("UNIMPLEMENTED", /^unknown method Nope for service nope\.v1\.NopeService$/),
  },
  message_too_large: {
    unary: status(
      "RESOURCE_EXHAUSTED",
      /^message size \d+ is larger than configured readMaxBytes 4194304$/,
    ),
    client_stream: status(
      "RESOURCE_EXHAUSTED",
      /^message size \d+ is larger than configured readMaxBytes 4194304$/,
    ),
    served_after: true,
  },
  concurrent_calls: { answered_for_itself: 100 },
  batch_update_users: {
    updated_count: 2,
    errors: ["update #2 (user_id=N): user N not found"],
    alice_tags: ["batched"],
  },
  stream_user_activities: {
    history: ["user.created", "user.login", "user.login", "user.updated"],
    live_action: "user.updated",
    live_user_matches: true,
    ended: "error",
    code: "CANCELLED",
  },
  sync_user_status: {
    current: "USER_STATUS_ACTIVE",
    changed: "USER_STATUS_INACTIVE",
    changed_user_matches: true,
    setter_ended: "end",
    follower_ended: "end",
    stored: "USER_STATUS_INACTIVE",
  },
  create_order: {
    status: "ORDER_STATUS_PENDING_PAYMENT",
    total: ["EUR", 3499],
    line_totals: [2500, 999],
    user_id_matches: true,
    retry_same_order: true,
  },
  create_order_conflicting_key: status("ALREADY_EXISTS", /^idempotency_key: already taken/),
  get_order: { same_order: true, skus: ["SKU-1", "SKU-2"], total_minor: 3499 },
  get_order_not_found: status("NOT_FOUND", /^order 9000000000 not found$/),
  list_orders: { page_sizes: [1, 1], both_orders: true, last_page: true },
  cancel_order: {
    status: "ORDER_STATUS_CANCELLED",
    cancel_reason: "changed my mind",
    ship_after_cancel: { code: "FAILED_PRECONDITION", names_status: true },
  },
  pay_order_wrong_amount: status(
    "INVALID_ARGUMENT",
    /^invalid request: amount: must equal the order total, 3499 EUR/,
  ),
  pay_order: { status: "ORDER_STATUS_PAID", paid: ["EUR", 3499], retry_same_payment: true },
  ship_order: { status: "ORDER_STATUS_SHIPPED", carrier: "DHL", tracking_number: "JJD0001" },
  track_order_and_update_shipment: {
    history: ["ORDER_EVENT_TYPE_CREATED", "ORDER_EVENT_TYPE_PAID", "ORDER_EVENT_TYPE_SHIPPED"],
    live: ["ORDER_EVENT_TYPE_CHECKPOINT", "Leipzig"],
    after: ["ORDER_EVENT_TYPE_DELIVERED"],
    stream_end: "end",
    applied_count: 2,
    errors: ["checkpoint #2 (order_id=N): order N not found"],
    delivered_is_order: true,
  },
  deadline_on_live_stream: {
    first_action: "user.created",
    ended: "error",
    code: "DEADLINE_EXCEEDED",
  },
  deadline_enforced_by_server: { ended: "error", code: "DEADLINE_EXCEEDED" },
  cancel_live_stream: { ended: "error", code: "CANCELLED", served_after: true },
  metadata_both_ways: {
    code: "OK",
    user_matches: true,
    request_id_in_headers: true,
    request_id_on_error: true,
  },
  gzip_request: { user_matches: true, updated_count: 1, errors: [], tags_stored: true },
  gzip_response: {
    probe: { case: "gzip_response_probe", observed: { tags: 32, over_1_kib: true } },
    // One DATA frame, one message, its compressed flag set.
    grpc_message_flags: [1],
    compression_complaints: [],
  },
};

const found = findGrpcio();

describe("grpc C-core (Debian's python3-grpcio) against the server", {
  skip: found.skip ?? false,
}, () => {
  const dir = mkdtempSync(join(tmpdir(), "keel-grpcio-"));
  const secret = "a secret for the C-core test, 32+ characters";
  const results = new Map<string, { observed?: unknown; error?: string; trace?: string }>();
  let logs: Record<string, unknown>[] = [];
  let stderr = "";
  let server: ServerProcess;
  let clientArgs: string[];

  before(async () => {
    const descriptors = join(dir, "api.binpb");
    // The google.api options' .proto files are those buf.gen.yaml reads (gen's devDependencies).
    const protoc = spawnSync(
      (found as { protoc: string }).protoc,
      [
        "-I",
        join(root, "proto"),
        "-I",
        join(root, "gen", "node_modules", "google-proto-files"),
        "--include_imports",
        `--descriptor_set_out=${descriptors}`,
        "user/v1/user.proto",
        "order/v1/order.proto",
      ],
      { encoding: "utf8" },
    );
    assert.equal(protoc.status, 0, protoc.stderr);

    server = runServer({
      KEEL_DATA_DIR: join(dir, "data"),
      KEEL_JWT_SECRET: secret,
      KEEL_PASSWORD_COST: "10",
      // One client address makes every call: lift the per-address budgets.
      KEEL_CREATE_USER_RATE_LIMIT_PER_MINUTE: "6000",
      KEEL_CREATE_USER_RATE_LIMIT_BURST: "100",
      KEEL_LOGIN_RATE_LIMIT_PER_MINUTE: "6000",
      KEEL_LOGIN_RATE_LIMIT_BURST: "100",
      KEEL_PASSWORD_HASH_PER_CLIENT: "64",
      // The last test stops the server; live streams end at once, calls in flight get this long.
      KEEL_SHUTDOWN_GRACE_MS: "500",
    });
    const url = new URL(await servingUrl(server));
    logs = followLogs(server);
    const token = await mintToken("9001", ["admin"], 600, new TextEncoder().encode(secret));
    clientArgs = [client, "--target", url.host, "--token", token, "--descriptors", descriptors];
    const run = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
      execFile(
        python,
        clientArgs,
        { timeout: 60_000, encoding: "utf8" },
        (error, stdout, stderr) =>
          error ? reject(Object.assign(error, { stderr })) : resolve({ stdout, stderr }),
      );
    });
    stderr = run.stderr;
    for (const line of run.stdout.split("\n").filter((l) => l.startsWith("{"))) {
      const { case: name, ...result } = JSON.parse(line) as { case: string; observed?: unknown };
      results.set(name, result);
    }
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it("reports every case, in order", () => {
    assert.deepEqual([...results.keys()], Object.keys(cases), stderr);
  });

  for (const [name, expected] of Object.entries(cases)) {
    it(name, () => {
      const result = results.get(name);
      assert.ok(result, `no result for ${name}: ${stderr}`);
      assert.equal(result.error, undefined, `${result.error}\n${result.trace}`);
      assertObserved(result.observed, expected, name);
    });
  }

  it("ends the calls on the server too: the deadline by its own timer, the cancel as cancelled", () => {
    const codeOf = (prefix: string) =>
      logs.find(
        (l) =>
          l.msg === "finished call" &&
          String(l.request_id).startsWith(prefix) &&
          l.method === "user.v1.UserService/StreamUserActivities",
      )?.code;
    // With C-core's own deadline check off, the server's timer from grpc-timeout ended the call.
    assert.equal(codeOf("server-deadline-"), "DeadlineExceeded");
    assert.equal(codeOf("cancel-"), "Canceled");
  });

  // Last: it stops the server.
  it("ends a live stream with UNAVAILABLE when the server shuts down, and the server exits 0", async () => {
    const child = spawn(python, [...clientArgs, "--only", "shutdown_stream"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    try {
      assert.deepEqual(JSON.parse((await lines.next()).value ?? "null"), { ready: true });
      server.child.kill("SIGTERM");
      const { value } = await lines.next();
      assertObserved(
        JSON.parse(value ?? "null"),
        {
          case: "shutdown_stream",
          observed: {
            ended: "error",
            code: "UNAVAILABLE",
            message: "the server is shutting down; reconnect",
          },
        },
        "shutdown_stream",
      );
      assert.equal((await server.exited).code, 0);
    } finally {
      clearTimeout(timer);
    }
  });
});
