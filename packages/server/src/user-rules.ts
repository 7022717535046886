import type { Violations } from "./violations.ts";

/** The rules a user's fields follow; each adds what is wrong to `v` under the field's name. */

const usernamePattern = /^[A-Za-z0-9._-]{3,32}$/;
// Practical, not RFC 5322: one @, no spaces, a dot in the domain, no dot at either end of it.
const emailPattern = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/;
const maxTags = 32;
const maxTagLength = 64;
const maxMetadataEntries = 32;
const maxMetadataKeyLength = 64;
const maxMetadataValueLength = 1024;

export function checkUserId(v: Violations, field: string, id: bigint): void {
  if (id <= 0n) v.add(field, "must be a positive user id");
}

export function checkUsername(v: Violations, field: string, username: string): void {
  if (!usernamePattern.test(username)) {
    v.add(field, "must be 3 to 32 characters of letters, digits, '.', '_' or '-'");
  }
}

export function checkEmail(v: Violations, field: string, email: string): void {
  if (email.length > 254 || !emailPattern.test(email)) {
    v.add(field, "must be a valid email address such as name@example.com");
  }
}

export function checkPassword(v: Violations, field: string, password: string): void {
  const length = [...password].length;
  if (length < 8 || length > 128) v.add(field, "must be 8 to 128 characters");
}

export function checkTags(v: Violations, field: string, tags: readonly string[]): void {
  if (tags.length > maxTags) v.add(field, `at most ${maxTags} tags`);
  tags.forEach((tag, i) => {
    if (tag.length === 0 || tag.length > maxTagLength) {
      v.add(`${field}[${i}]`, `must be 1 to ${maxTagLength} characters`);
    }
  });
}

export function checkMetadata(
  v: Violations,
  field: string,
  metadata: Record<string, string>,
): void {
  const entries = Object.entries(metadata);
  if (entries.length > maxMetadataEntries) v.add(field, `at most ${maxMetadataEntries} entries`);
  for (const [key, value] of entries) {
    if (key.length === 0 || key.length > maxMetadataKeyLength) {
      v.add(
        `${field}[${JSON.stringify(key)}]`,
        `keys must be 1 to ${maxMetadataKeyLength} characters`,
      );
    } else if (value.length > maxMetadataValueLength) {
      v.add(
        `${field}[${JSON.stringify(key)}]`,
        `values must be at most ${maxMetadataValueLength} characters`,
      );
    }
  }
}
