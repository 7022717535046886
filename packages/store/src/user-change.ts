import { type UserStatus, UserStatusSchema } from "@keel/gen/user/v1/user_pb";
import { StoreError } from "./store-error.ts";
import type { UserPatch, UserRecord } from "./types.ts";

/** What applying a patch changes, and the activities that record it. Shared by every store. */
export interface UserChange {
  after: Omit<UserRecord, "createdAt" | "updatedAt" | "id" | "roles">;
  activities: { action: string; details: Record<string, string> }[];
  statusChanged: boolean;
}

/** Compares a patch with the stored user; undefined when the patch changes nothing. */
export function describeUserChange(before: UserRecord, patch: UserPatch): UserChange | undefined {
  const after = {
    username: patch.username ?? before.username,
    email: patch.email ?? before.email,
    status: patch.status ?? before.status,
    tags: patch.tags ?? before.tags,
    metadata: patch.metadata ?? before.metadata,
  };
  const fields: string[] = [];
  if (after.username !== before.username) fields.push("username");
  if (after.email !== before.email) fields.push("email");
  if (!sameList(after.tags, before.tags)) fields.push("tags");
  if (!sameMap(after.metadata, before.metadata)) fields.push("metadata");
  const statusChanged = after.status !== before.status;
  if (fields.length === 0 && !statusChanged) return undefined;

  const activities: UserChange["activities"] = [];
  if (fields.length > 0)
    activities.push({ action: "user.updated", details: { fields: fields.join(",") } });
  if (statusChanged) {
    activities.push({
      action: "user.status_changed",
      details: { from: statusName(before.status), to: statusName(after.status) },
    });
  }
  return { after, activities, statusChanged };
}

/** The enum value's name as written in the proto, for example `USER_STATUS_ACTIVE`. */
export function statusName(status: number): string {
  return UserStatusSchema.value[status as UserStatus]?.name ?? String(status);
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}

function sameMap(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => a[key] === b[key]);
}

/** The form of a username or email that uniqueness is decided on, the same in every store. */
export function foldKey(value: string): string {
  return value.normalize("NFKC").toLowerCase();
}

export function userNotFound(id: bigint): StoreError {
  return new StoreError("not_found", `user ${id} not found`);
}

/** The error of a username or email already taken, as `create` throws it. */
export function alreadyTaken(field: "username" | "email", cause?: unknown): StoreError {
  return new StoreError("already_exists", `${field} is already taken`, {
    field,
    ...(cause === undefined ? {} : { cause }),
  });
}
