import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type User,
  type UserActivity,
  UserActivitySchema,
  UserSchema,
} from "@keel/gen/user/v1/user_pb";
import type { ActivityRecord, UserRecord } from "@keel/store";
import type { Violations } from "./violations.ts";

export function toUser(record: UserRecord): User {
  return create(UserSchema, {
    userId: record.id,
    username: record.username,
    email: record.email,
    status: record.status,
    createdAt: timestampFromDate(record.createdAt),
    updatedAt: timestampFromDate(record.updatedAt),
    tags: record.tags,
    metadata: record.metadata,
  });
}

export function toActivity(record: ActivityRecord): UserActivity {
  return create(UserActivitySchema, {
    activityId: record.id,
    userId: record.userId,
    action: record.action,
    timestamp: timestampFromDate(record.createdAt),
    details: record.details,
  });
}

// Both the proto name and the JSON name of each User field, resolved once at start-up.
const userFieldsByName = new Map(
  UserSchema.fields.flatMap((field) => [
    [field.name, field.localName],
    [field.jsonName, field.localName],
  ]),
);

/** The local names of the requested User fields; unknown names are reported to `v`. */
export function resolveUserFields(v: Violations, names: readonly string[]): (keyof User)[] {
  const fields: (keyof User)[] = [];
  names.forEach((name, i) => {
    const local = userFieldsByName.get(name);
    if (local === undefined) {
      v.add(
        `fields[${i}]`,
        `unknown user field ${JSON.stringify(name)}; use one of ${[...new Set(UserSchema.fields.map((f) => f.name))].join(", ")}`,
      );
    } else {
      fields.push(local as keyof User);
    }
  });
  return fields;
}

/** A copy of `user` with only `fields` set; all of it when `fields` is empty. */
export function pickUserFields(user: User, fields: readonly (keyof User)[]): User {
  if (fields.length === 0) return user;
  const picked = create(UserSchema) as Record<string, unknown>;
  for (const field of fields) picked[field] = user[field];
  return picked as User;
}
