import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "@keel/gen/errdetails/v1/errdetails_pb";
import { createBoundedErrorsInterceptor } from "./bounded-errors.ts";
import { bounded, quote } from "./bounded-text.ts";
import { messages, protocols, startTestService } from "./testing/test-service.ts";

// 4 MiB of a client's value in a message: more than an HTTP/2 header frame holds.
const huge = "A".repeat(4 << 20);
const failure = () =>
  new ConnectError(`unknown field ${huge}`, Code.InvalidArgument, { "x-kept": "yes" }, [
    {
      desc: BadRequestSchema,
      value: create(BadRequestSchema, { fieldViolations: [{ field: "f" }] }),
    },
  ]);

let service: Awaited<ReturnType<typeof startTestService>>;
before(async () => {
  service = await startTestService([createBoundedErrorsInterceptor()], {
    getUser() {
      throw failure();
    },
    // biome-ignore lint/correctness/useYield: fails before its first message
    async *streamUserActivities() {
      throw failure();
    },
    async batchUpdateUsers(requests) {
      for await (const _ of requests) throw failure();
      return {};
    },
    async *syncUserStatus(requests) {
      for await (const req of requests) {
        yield { userId: req.userId };
        throw failure();
      }
    },
  });
});
after(() => service.close());

function bound(err: unknown): boolean {
  assert.ok(err instanceof ConnectError, String(err));
  assert.equal(err.code, Code.InvalidArgument);
  assert.ok(Buffer.byteLength(err.rawMessage) <= 1024, `${err.rawMessage.length} characters`);
  assert.match(err.rawMessage, /^unknown field A+ … \(4194318 bytes, cut\)$/);
  assert.equal(err.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field, "f");
  return true;
}

describe("bounded errors interceptor", () => {
  for (const protocol of protocols) {
    describe(protocol, () => {
      it("cuts the message of a unary error to 1 KiB, keeping code and details", async () => {
        await assert.rejects(service.client(protocol).getUser({ userId: 1n }), bound);
      });
      it("cuts the message of a server stream's error", async () => {
        const call = async () => {
          for await (const _ of service.client(protocol).streamUserActivities({ userId: 1n })) {
          }
        };
        await assert.rejects(call(), bound);
      });
      it("cuts the message of a client stream's error", async () => {
        await assert.rejects(
          service.client(protocol).batchUpdateUsers(messages([{ userId: 1n }])),
          bound,
        );
      });
      it("cuts the message of an error in the middle of a bidi stream", async () => {
        const received: bigint[] = [];
        const call = async () => {
          const stream = service.client(protocol).syncUserStatus(messages([{ userId: 7n }]));
          for await (const update of stream) received.push(update.userId);
        };
        await assert.rejects(call(), bound);
        assert.deepEqual(received, [7n]);
      });
    });
  }
});

describe("quote", () => {
  it("quotes a short value whole and a long one cut and marked", () => {
    assert.equal(quote("name"), '"name"');
    assert.equal(quote("x".repeat(70)), `"${"x".repeat(64)}…" (70 characters, cut)`);
    assert.equal(quote("x".repeat(64)), `"${"x".repeat(64)}"`);
  });
  it("never splits a surrogate pair", () => {
    const cut = quote(`${"x".repeat(63)}😀tail`);
    assert.ok(cut.startsWith(`"${"x".repeat(63)}…"`), cut);
  });
});

describe("bounded", () => {
  it("passes a short text and cuts a long one to the byte limit, marked", () => {
    assert.equal(bounded("short"), "short");
    const cut = bounded("é".repeat(5000), 100);
    assert.ok(Buffer.byteLength(cut) <= 100, cut);
    assert.match(cut, /^é+ … \(10000 bytes, cut\)$/);
  });
});
