import { StoreError } from "./store-error.ts";

/**
 * Throws `invalid_argument` when any string in `values` (directly, or in their arrays and plain
 * objects, keys included) holds a NUL character: PostgreSQL refuses NUL in text and JSON, so every
 * store refuses it alike rather than SQLite keeping what PostgreSQL cannot.
 */
export function refuseNulText(values: readonly unknown[]): void {
  for (const value of values) {
    if (holdsNul(value)) {
      throw new StoreError("invalid_argument", "text must not contain the NUL character (U+0000)");
    }
  }
}

function holdsNul(value: unknown): boolean {
  if (typeof value === "string") return value.includes("\0");
  if (Array.isArray(value)) return value.some(holdsNul);
  if (typeof value !== "object" || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return false;
  return Object.entries(value).some(([key, item]) => key.includes("\0") || holdsNul(item));
}
