/**
 * What went wrong in the store, in terms a caller can act on. The server maps each kind to a gRPC
 * code in one place; anything else thrown by a store is a bug or an infrastructure failure.
 */
export type StoreErrorKind =
  /** A unique value is taken; `field` names it. */
  | "already_exists"
  /** The row to change does not exist. */
  | "not_found"
  /** A value the database cannot store, such as text with a NUL character. */
  | "invalid_argument"
  /** The change is not allowed in the row's current state; the message names that state. */
  | "failed_precondition"
  /** The database cannot be reached or is shutting down. */
  | "unavailable"
  /** A subscriber read slower than events arrived and its buffer filled up. */
  | "overflow";

export class StoreError extends Error {
  override readonly name = "StoreError";
  readonly kind: StoreErrorKind;
  /** The field a conflict is about (`username`, `email`), when there is one. */
  readonly field: string | undefined;

  constructor(
    kind: StoreErrorKind,
    message: string,
    options?: { field?: string; cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    this.field = options?.field;
  }
}
