import { z } from "zod";
import { knownRoles } from "./roles.ts";

const roles = knownRoles();

/** The shape rules of the API key requests, checked by the validation interceptor. */
export const apiKeyRequestSchemas = {
  "user.v1.CreateApiKeyRequest": z.object({
    name: z
      .string()
      .refine((name) => name.trim().length >= 1 && [...name].length <= 64, {
        error: "must be 1 to 64 characters",
      })
      // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
      .refine((name) => !/[\u0000-\u001f\u007f]/.test(name), {
        error: "must not contain control characters",
      }),
    roles: z
      .array(
        z.string().refine((role) => roles.includes(role), {
          error: `unknown role; use ${roles.join(" or ")}`,
        }),
      )
      .max(16, { error: "at most 16 roles" }),
    expiresAt: z
      .object({ seconds: z.bigint(), nanos: z.number() })
      .refine((t) => Number(t.seconds) * 1000 > Date.now(), { error: "must be in the future" })
      .optional(),
  }),
  "user.v1.ListApiKeysRequest": z.object({}),
  "user.v1.RevokeApiKeyRequest": z.object({
    keyId: z.string().regex(/^[0-9a-f]{16}$/, { error: "must be a key id: 16 hex digits" }),
  }),
} satisfies Record<string, z.ZodType>;
