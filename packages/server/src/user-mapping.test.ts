import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, isMessage, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { UserActivitySchema, UserSchema, UserStatus } from "@keel/gen/user/v1/user_pb";
import type { ActivityRecord, UserRecord } from "@keel/store";
import { toActivity, toUser } from "./user-mapping.ts";

// Instants with and without milliseconds, the epoch, and before it (negative seconds).
const instants = [1796280000123, 1796280000000, 0, -1500, -1].map((ms) => new Date(ms));

describe("user mapping", () => {
  it("makes the User that create makes, field for field and byte for byte", () => {
    for (const [i, date] of instants.entries()) {
      const record: UserRecord = {
        id: BigInt(i + 1),
        username: `user${i}`,
        email: `user${i}@example.com`,
        status: UserStatus.SUSPENDED,
        tags: i % 2 === 0 ? ["a", "b"] : [],
        metadata: i % 2 === 0 ? { team: "core" } : {},
        roles: ["admin"],
        createdAt: date,
        updatedAt: new Date(date.getTime() + 999),
      };
      const expected = create(UserSchema, {
        userId: record.id,
        username: record.username,
        email: record.email,
        status: record.status,
        createdAt: timestampFromDate(record.createdAt),
        updatedAt: timestampFromDate(record.updatedAt),
        tags: record.tags,
        metadata: record.metadata,
      });
      const user = toUser(record);
      assert.ok(isMessage(user, UserSchema));
      assert.deepStrictEqual(user, expected);
      assert.deepEqual(toBinary(UserSchema, user), toBinary(UserSchema, expected));
    }
  });

  it("makes the UserActivity that create makes", () => {
    const record: ActivityRecord = {
      id: 7n,
      userId: 3n,
      action: "user.updated",
      details: { fields: "email" },
      createdAt: instants[0] as Date,
    };
    const expected = create(UserActivitySchema, {
      activityId: record.id,
      userId: record.userId,
      action: record.action,
      timestamp: timestampFromDate(record.createdAt),
      details: record.details,
    });
    const activity = toActivity(record);
    assert.ok(isMessage(activity, UserActivitySchema));
    assert.deepStrictEqual(activity, expected);
    assert.deepEqual(
      toBinary(UserActivitySchema, activity),
      toBinary(UserActivitySchema, expected),
    );
  });
});
