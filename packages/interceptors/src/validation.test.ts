import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "@keel/gen/errdetails/v1/errdetails_pb";
import { z } from "zod";
import { messages, protocols, startTestService } from "./testing/test-service.ts";
import { createValidationInterceptor } from "./validation.ts";

const positiveId = z.bigint().positive("must be a positive user id");
const schemas = {
  "user.v1.GetUserRequest": z.object({
    userId: positiveId,
    fields: z.array(z.string().min(1, "must not be empty")),
  }),
  "user.v1.StreamUserActivitiesRequest": z.object({ userId: positiveId }),
  "user.v1.UpdateUserRequest": z.object({
    userId: positiveId,
    user: z.object({
      email: z.string().includes("@", { message: "must be an email address" }),
      metadata: z.record(z.string(), z.string().max(3, "at most 3 characters")),
    }),
  }),
  "user.v1.UserStatusUpdate": z.object({ userId: positiveId }),
};

let service: Awaited<ReturnType<typeof startTestService>>;
let itemized: Awaited<ReturnType<typeof startTestService>>;
before(async () => {
  service = await startTestService([createValidationInterceptor({ schemas })]);
  itemized = await startTestService([
    createValidationInterceptor({ schemas, itemized: ["user.v1.UserService/BatchUpdateUsers"] }),
  ]);
});
after(async () => {
  await service.close();
  await itemized.close();
});

function invalid(fields: string[], message: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof ConnectError, String(err));
    assert.equal(err.code, Code.InvalidArgument);
    assert.match(err.rawMessage, message);
    const details = err.findDetails(BadRequestSchema);
    assert.deepEqual(
      details.flatMap((d) => d.fieldViolations.map((v) => v.field)),
      fields,
    );
    return true;
  };
}

describe("validation interceptor", () => {
  for (const protocol of protocols) {
    it(`rejects a bad unary request naming each field, in the message and the details, over ${protocol}`, async () => {
      const client = service.client(protocol);
      assert.equal((await client.getUser({ userId: 3n })).user?.userId, 3n);
      await assert.rejects(
        client.getUser({ userId: 0n, fields: ["ok", ""] }),
        invalid(
          ["user_id", "fields[1]"],
          /^invalid request: user_id: must be a positive user id; fields\[1\]: must not be empty$/,
        ),
      );
    });

    it(`checks each message of client and bidi streams, with nested and map paths, over ${protocol}`, async () => {
      const client = service.client(protocol);
      await assert.rejects(
        client.batchUpdateUsers(
          messages([
            { userId: 1n, user: { email: "a@b", metadata: { team: "ok" } } },
            { userId: 2n, user: { email: "nope", metadata: { team: "platform" } } },
          ]),
        ),
        invalid(
          ["user.email", 'user.metadata["team"]'],
          /user\.email: must be an email address; user\.metadata\["team"\]: at most 3/,
        ),
      );
      const echoed: bigint[] = [];
      await assert.rejects(
        async () => {
          for await (const u of client.syncUserStatus(messages([{ userId: 1n }, { userId: -1n }])))
            echoed.push(u.userId);
        },
        invalid(["user_id"], /user_id/),
      );
      assert.deepEqual(echoed, [1n]);
    });
  }

  for (const protocol of protocols) {
    it(`refuses a NUL character in any text, of a message with or without a schema, over ${protocol}`, async () => {
      const client = service.client(protocol);
      // CreateUserRequest has no schema here: only its text is checked.
      await assert.rejects(
        client.createUser({
          username: "ada\0",
          email: "ada@example.com",
          password: "pw",
          tags: ["ok", "b\0d"],
        }),
        invalid(
          ["username", "tags[1]"],
          /^invalid request: username: must not contain the NUL character \(U\+0000\); tags\[1\]: must not contain the NUL/,
        ),
      );
      await assert.rejects(
        client.getUser({ userId: 1n, fields: ["user_id\0"] }),
        invalid(["fields[0]"], /fields\[0\]: must not contain the NUL/),
      );
      await assert.rejects(
        client.batchUpdateUsers(
          messages([
            {
              userId: 2n,
              user: { email: "a@b", metadata: { "k\0": "v", ok: "\0" } },
              updateMask: { paths: ["metadata\0"] },
            },
          ]),
        ),
        invalid(
          ["user.metadata", 'user.metadata["ok"]', "update_mask.paths[0]"],
          /user\.metadata: keys must not contain the NUL character/,
        ),
      );
    });
  }

  it("checks a server stream's request", async () => {
    await assert.rejects(
      async () => {
        for await (const _ of service.client("grpc").streamUserActivities({ userId: 0n })) {
          // nothing arrives
        }
      },
      invalid(["user_id"], /user_id/),
    );
  });

  it("leaves itemized client streams to their handler", async () => {
    const result = await itemized
      .client("grpc")
      .batchUpdateUsers(messages([{ userId: 0n }, { userId: -4n }]));
    assert.equal(result.updatedCount, 2);
  });
});
