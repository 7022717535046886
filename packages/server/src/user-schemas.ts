import { UserSchema, UserStatus } from "@keel/gen/user/v1/user_pb";
import { quote } from "@keel/interceptors";
import { z } from "zod";

/**
 * The shape rules of UserService's requests, checked by the validation interceptor before a
 * handler runs (UpdateUserRequest by BatchUpdateUsers itself, update by update).
 */

export const userId = z.bigint().positive({ error: "must be a positive user id" });
const username = z.string().regex(/^[A-Za-z0-9._-]{3,32}$/, {
  error: "must be 3 to 32 characters of letters, digits, '.', '_' or '-'",
});
// Practical, not RFC 5322: one @, no spaces, a dot in the domain, no dot at either end of it.
const email = z
  .string()
  .max(254, { error: "must be a valid email address such as name@example.com" })
  .regex(/^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/, {
    error: "must be a valid email address such as name@example.com",
  });
const password = z.string().refine((p) => [...p].length >= 8 && [...p].length <= 128, {
  error: "must be 8 to 128 characters",
});
const tags = z
  .array(
    z
      .string()
      .min(1, { error: "must be 1 to 64 characters" })
      .max(64, { error: "must be 1 to 64 characters" }),
  )
  .max(32, { error: "at most 32 tags" });
const metadata = z
  .record(
    z
      .string()
      .min(1, { error: "keys must be 1 to 64 characters" })
      .max(64, { error: "keys must be 1 to 64 characters" }),
    z.string().max(1024, { error: "values must be at most 1024 characters" }),
  )
  .refine((m) => Object.keys(m).length <= 32, { error: "at most 32 entries" });
const knownStatuses = new Set<number>([
  UserStatus.ACTIVE,
  UserStatus.INACTIVE,
  UserStatus.SUSPENDED,
]);
const status = z
  .number()
  .refine((s) => knownStatuses.has(s), { error: "must be ACTIVE, INACTIVE or SUSPENDED" });
const statusOrAll = z.number().refine((s) => s === UserStatus.UNSPECIFIED || knownStatuses.has(s), {
  error: "unknown status",
});
const pageSize = z.number().int().min(0, { error: "must be 0 (meaning 50) to 1000" });
const pageToken = z.string().max(512, { error: "is not a token this service issued" });

// Field names GetUser accepts: proto names and JSON names.
const userFieldNames = new Set(UserSchema.fields.flatMap((f) => [f.name, f.jsonName]));
const protoFieldNames = UserSchema.fields.map((f) => f.name).join(", ");

/** The User fields an update may change (field mask paths are proto names). */
export const maskableUserFields = ["username", "email", "status", "tags", "metadata"] as const;
const immutableUserFields = new Set(["user_id", "created_at", "updated_at"]);

/** The fields an update applies: those in its mask, or else those set in `user`. */
export function updatedFields(update: {
  user?: {
    username: string;
    email: string;
    status: number;
    tags: string[];
    metadata: Record<string, string>;
  };
  updateMask?: { paths: string[] };
}): string[] {
  const paths = update.updateMask?.paths ?? [];
  if (paths.length > 0)
    return paths.filter((p) => (maskableUserFields as readonly string[]).includes(p));
  const user = update.user;
  if (user === undefined) return [];
  return maskableUserFields.filter((field) => {
    const value = user[field];
    return Array.isArray(value)
      ? value.length > 0
      : typeof value === "object"
        ? Object.keys(value).length > 0
        : value !== "" && value !== 0;
  });
}

const updateUserRequest = z
  .object({
    userId,
    user: z
      .object({
        userId: z.bigint(),
        username: z.string(),
        email: z.string(),
        status: z.number(),
        tags: z.array(z.string()),
        metadata: z.record(z.string(), z.string()),
      })
      .optional(),
    updateMask: z.object({ paths: z.array(z.string()) }).optional(),
  })
  .superRefine((req, ctx) => {
    if (req.user === undefined) {
      ctx.addIssue({ code: "custom", path: ["user"], message: "required" });
      return;
    }
    if (req.user.userId !== 0n && req.user.userId !== req.userId) {
      ctx.addIssue({
        code: "custom",
        path: ["user", "userId"],
        message: "must be unset or equal to user_id",
      });
    }
    for (const path of req.updateMask?.paths ?? []) {
      if (immutableUserFields.has(path)) {
        ctx.addIssue({
          code: "custom",
          path: ["updateMask"],
          message: `${path} cannot be changed`,
        });
      } else if (!(maskableUserFields as readonly string[]).includes(path)) {
        ctx.addIssue({
          code: "custom",
          path: ["updateMask"],
          message: `unknown field ${quote(path)}; use ${maskableUserFields.join(", ")}`,
        });
      }
    }
    const rules = { username, email, status, tags, metadata };
    const fields = updatedFields(req);
    for (const field of fields) {
      const result = rules[field as keyof typeof rules].safeParse(
        req.user[field as keyof typeof rules],
      );
      for (const issue of result.error?.issues ?? []) {
        ctx.addIssue({
          code: "custom",
          path: ["user", field, ...issue.path],
          message: issue.message,
        });
      }
    }
    if (fields.length === 0 && (req.updateMask?.paths ?? []).length === 0) {
      ctx.addIssue({
        code: "custom",
        path: ["user"],
        message: "nothing to update; set fields of user or list them in update_mask",
      });
    }
  });

export const userRequestSchemas = {
  "user.v1.GetUserRequest": z.object({
    userId,
    fields: z.array(
      z.string().refine((name) => userFieldNames.has(name), {
        error: (issue) => `unknown user field ${quote(issue.input)}; use one of ${protoFieldNames}`,
      }),
    ),
  }),
  "user.v1.CreateUserRequest": z.object({ username, email, password, tags }),
  "user.v1.ListUsersRequest": z.object({ pageSize, pageToken, status: statusOrAll }),
  "user.v1.StreamUserActivitiesRequest": z.object({ userId }),
  "user.v1.UpdateUserRequest": updateUserRequest,
  "user.v1.UserStatusUpdate": z.object({ userId, status: statusOrAll }),
  "user.v1.LoginRequest": z.object({
    username: z.string().min(1, { error: "required" }).max(256, { error: "too long" }),
    password: z.string().min(1, { error: "required" }).max(1024, { error: "too long" }),
  }),
  "user.v1.RefreshTokenRequest": z.object({
    refreshToken: z.string().min(1, { error: "required" }).max(4096, { error: "too long" }),
  }),
} satisfies Record<string, z.ZodType>;
