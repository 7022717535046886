import type { DescEnum } from "@bufbuild/protobuf";

/**
 * A protobuf enum value's name without the prefix its values share: `SERVING`, `ACTIVE` for
 * USER_STATUS_ACTIVE, `PENDING_PAYMENT` for ORDER_STATUS_PENDING_PAYMENT; the number when unknown.
 */
export function enumName(schema: DescEnum, value: number): string {
  const name = schema.value[value]?.name;
  if (name === undefined) return String(value);
  // protobuf-es keeps the prefix in lower case ("user_status_").
  const prefix = schema.sharedPrefix?.toUpperCase();
  return prefix !== undefined && name.startsWith(prefix) ? name.slice(prefix.length) : name;
}
