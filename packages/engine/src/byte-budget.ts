import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Bytes of request bodies held in memory, against a limit: one budget per process, one per
 * connection. What a call buffers is taken from both and given back as it is handed on, so that
 * no client, anonymous or signed in, can park more than its connection's share, and all of them
 * together no more than the process's.
 */
export class ByteBudget {
  private used = 0;
  /** For messages: "this connection", "the server". */
  readonly name: string;
  readonly limit: number;
  private readonly parent: ByteBudget | undefined;

  constructor(name: string, limit: number, parent?: ByteBudget) {
    this.name = name;
    this.limit = limit;
    this.parent = parent;
  }

  /** Bytes held now. */
  get held(): number {
    return this.used;
  }

  /** Takes `n` bytes, or throws RESOURCE_EXHAUSTED (taking nothing) when this or a parent is full. */
  take(n: number): void {
    if (this.used + n > this.limit) throw this.exhausted();
    this.parent?.take(n);
    this.used += n;
  }

  /** Gives `n` bytes back. */
  give(n: number): void {
    this.used -= n;
    this.parent?.give(n);
  }

  private exhausted(): ConnectError {
    return new ConnectError(
      `${this.name} is holding its limit of ${this.limit} bytes of request data; send less at once, or retry later`,
      Code.ResourceExhausted,
    );
  }
}
