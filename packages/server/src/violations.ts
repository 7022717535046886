import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Collects what is wrong with a request, field by field, so that one INVALID_ARGUMENT names every
 * bad field at once: `invalid request: username: must be 3 to 32 characters; email: ...`.
 */
export class Violations {
  private readonly found: string[] = [];

  add(field: string, problem: string): void {
    this.found.push(`${field}: ${problem}`);
  }

  get empty(): boolean {
    return this.found.length === 0;
  }

  /** The violations as one line each, for example for BatchUpdateUsers' `errors`. */
  toString(): string {
    return this.found.join("; ");
  }

  throwIfAny(): void {
    if (this.found.length > 0) {
      throw new ConnectError(`invalid request: ${this.toString()}`, Code.InvalidArgument);
    }
  }
}
