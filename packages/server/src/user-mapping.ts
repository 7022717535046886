import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type User, type UserActivity, UserSchema } from "@keel/gen/user/v1/user_pb";
import type { ActivityRecord, UserRecord } from "@keel/store";

// The messages of the read paths are built as the plain objects proto3 messages are in
// protobuf-es, every field set: `create` fills them through one generic loop shared by every
// message type, whose property accesses V8 cannot specialize. The tests hold them equal to what
// `create` makes.

export function toUser(record: UserRecord): User {
  return {
    $typeName: "user.v1.User",
    userId: record.id,
    username: record.username,
    email: record.email,
    status: record.status,
    createdAt: timestampFromDate(record.createdAt),
    updatedAt: timestampFromDate(record.updatedAt),
    tags: record.tags,
    metadata: record.metadata,
  };
}

export function toActivity(record: ActivityRecord): UserActivity {
  return {
    $typeName: "user.v1.UserActivity",
    activityId: record.id,
    userId: record.userId,
    action: record.action,
    timestamp: timestampFromDate(record.createdAt),
    details: record.details,
  };
}

// Both the proto name and the JSON name of each User field, resolved once at start-up.
const userFieldsByName = new Map(
  UserSchema.fields.flatMap((field) => [
    [field.name, field.localName],
    [field.jsonName, field.localName],
  ]),
);

// No field named: all of them (see pickUserFields); shared, never changed.
const allUserFields: readonly (keyof User)[] = [];

/** The local names of the requested User fields (names are validated by the request schema). */
export function resolveUserFields(names: readonly string[]): readonly (keyof User)[] {
  if (names.length === 0) return allUserFields;
  return names.flatMap((name) => {
    const local = userFieldsByName.get(name);
    return local === undefined ? [] : [local as keyof User];
  });
}

/** A copy of `user` with only `fields` set; all of it when `fields` is empty. */
export function pickUserFields(user: User, fields: readonly (keyof User)[]): User {
  if (fields.length === 0) return user;
  const picked = create(UserSchema) as Record<string, unknown>;
  for (const field of fields) picked[field] = user[field];
  return picked as User;
}
