import type { Writable } from "node:stream";
import { type AuditSummaryOptions, createAuditSummary } from "./audit-summary.ts";
import { createRotatingFile } from "./rotating-file.ts";

/** One audited call, as written to the audit log: one JSON object per line. */
export interface AuditEntry {
  /** When the call finished, ISO 8601 in UTC. */
  time: string;
  /** The procedure, for example "user.v1.UserService/CreateUser". */
  method: string;
  /** The subject of the authenticated caller; null for anonymous calls. */
  principal: string | null;
  /** The remote address of the connection; empty when unknown. */
  peer: string;
  /** The request id of the call; empty when unknown. */
  request_id: string;
  /** "OK", or the name of the error code, for example "InvalidArgument" or "PermissionDenied". */
  outcome: string;
  /** The resources the call named, in its requests and responses. */
  targets: AuditTargets;
  /** The error message (without code prefix) of a failed call. */
  error?: string;
  /**
   * Set on a summary entry: `count` more calls of this method by this caller (principal and
   * peer; peer "*" for callers beyond the summary's table) ended with this outcome between `first`
   * and `last`, and were not written one by one. See `AuditLogOptions.summary`.
   */
  repeated?: { count: number; first: string; last: string };
}

/** The ids of the resources a call acted on, as decimal strings, each list deduplicated. */
export interface AuditTargets {
  user_ids: string[];
  order_ids: string[];
  /** Present when more ids than an entry holds were seen; the lists then hold the first ones. */
  truncated?: true;
}

export interface AuditLogOptions {
  /**
   * Where the JSON lines go, for example `fs.createWriteStream(path, { flags: "a" })` or
   * `process.stdout`. Default: the file at `path`.
   */
  destination?: Writable;
  /**
   * The file to append to when no `destination` is given; created with mode 0o600 (owner read and
   * write only) if it does not exist. One of `destination` and `path` is required.
   */
  path?: string;
  /**
   * With `path`: before the file would grow past this many bytes it is renamed to `path.1`
   * (`path.1` to `path.2` … up to `keep`) and a new one started; no entry is lost or split across
   * two files. 0: never rotate. Default 104857600 (100 MiB).
   */
  maxBytes?: number;
  /** With `path`: how many rotated files are kept. Default 5. */
  keep?: number;
  /**
   * Repeated refusals (rate limited, unauthenticated, denied) of one caller and method are
   * written once per interval, the rest as one summary entry with a count (`repeated`) at the
   * interval's end and at `close()`. Default: 60 s intervals; `{ intervalMs: 0 }` writes all.
   */
  summary?: AuditSummaryOptions;
  /**
   * At most this many lines wait to be written, counting those handed to the destination and not
   * yet confirmed. Further entries are dropped and counted. Default: 10000.
   */
  maxQueue?: number;
  /**
   * Told the total number of entries dropped so far whenever entries are dropped (a full queue, a
   * failed destination, a write after close), at most once per second: the first drop is reported
   * at once, later ones together a second after the previous report, and any not yet reported at
   * `close()`. Drops are never silent: log a warning here. Default: a warning on `console`.
   * Anything it throws is ignored.
   */
  onDrop?: (totalDropped: number) => void;
  /**
   * Told when the destination fails (it cannot be opened, a write fails). Every entry waiting then
   * and every later one is dropped. Default: an error on `console`. Anything it throws is ignored.
   */
  onError?: (err: Error) => void;
}

/** What an audit log has done so far. */
export interface AuditLogStats {
  /** Lines the destination confirmed as written. */
  written: number;
  /** Entries dropped: the queue was full, the destination failed, or the log was closed. */
  dropped: number;
  /** Lines accepted and not yet confirmed as written. */
  queued: number;
}

/** A bounded, non-blocking writer of audit entries as JSON lines. */
export interface AuditLog {
  /** Queues one entry. Never blocks and never throws: when the queue is full the entry is dropped. */
  write(entry: AuditEntry): void;
  /**
   * Resolves once every entry accepted before the call is written. Rejects with the destination's
   * error if it failed, since those entries are lost.
   */
  flush(): Promise<void>;
  /** Flushes, then ends the destination (except `process.stdout` and `process.stderr`). */
  close(): Promise<void>;
  stats(): AuditLogStats;
}

/** Lines handed to the destination in one `write`, at most about this many characters. */
const maxChunkChars = 64 * 1024;
const dropReportIntervalMs = 1000;

/**
 * Creates an audit log writing one JSON line per entry. Entries wait in a bounded queue and are
 * written in order, batched, as fast as the destination accepts them (it waits for 'drain' when
 * the destination asks to), so a slow disk never slows calls down: once `maxQueue` lines wait,
 * further entries are dropped, counted and reported through `onDrop`.
 */
export function createAuditLog(options: AuditLogOptions): AuditLog {
  const destination = options.destination ?? openFile(options);
  const maxQueue = options.maxQueue ?? 10000;
  const onDrop = options.onDrop ?? warnDropped;
  const onError = options.onError ?? logError;

  const queue: string[] = [];
  let accepted = 0;
  let written = 0;
  let dropped = 0;
  let failure: Error | undefined;
  let closed = false;
  let pumpScheduled = false;
  let awaitingDrain = false;
  const flushes: { upTo: number; resolve: () => void; reject: (err: Error) => void }[] = [];

  let reportedDropped = 0;
  let lastReport = Number.NEGATIVE_INFINITY;
  let reportTimer: NodeJS.Timeout | undefined;

  const report = () => {
    reportTimer = undefined;
    lastReport = Date.now();
    reportedDropped = dropped;
    ignoreErrors(() => onDrop(dropped));
  };
  const drop = (count: number) => {
    dropped += count;
    if (reportTimer !== undefined) return;
    const wait = lastReport + dropReportIntervalMs - Date.now();
    if (wait <= 0) report();
    else reportTimer = setTimeout(report, wait).unref();
  };

  const settleFlushes = () => {
    for (const flush of flushes.splice(0)) {
      if (failure !== undefined) flush.reject(failure);
      else if (written >= flush.upTo) flush.resolve();
      else flushes.push(flush);
    }
  };

  const fail = (err: Error) => {
    if (failure !== undefined) return;
    failure = err;
    const lost = accepted - written;
    queue.length = 0;
    accepted = written;
    if (lost > 0) drop(lost);
    ignoreErrors(() => onError(err));
    settleFlushes();
  };
  destination.on("error", fail);

  const pump = () => {
    pumpScheduled = false;
    while (queue.length > 0 && !awaitingDrain && failure === undefined) {
      let chunk = "";
      let lines = 0;
      while (lines < queue.length && (lines === 0 || chunk.length < maxChunkChars)) {
        chunk += queue[lines];
        lines++;
      }
      queue.splice(0, lines);
      let ok: boolean;
      try {
        ok = destination.write(chunk, (err) => {
          if (err || failure !== undefined) return; // a failure arrives through 'error'
          written += lines;
          settleFlushes();
        });
      } catch (err) {
        // A destination that throws (writing after end, for example) rather than emitting 'error'.
        fail(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      if (!ok) {
        awaitingDrain = true;
        destination.once("drain", () => {
          awaitingDrain = false;
          pump();
        });
      }
    }
  };

  const enqueue = (entry: AuditEntry) => {
    if (closed || failure !== undefined || accepted - written >= maxQueue) {
      drop(1);
      return;
    }
    let line: string;
    try {
      line = `${JSON.stringify(entry)}\n`;
    } catch (err) {
      // Only a caller bypassing the types gets here (a bigint, a cycle); the entry is lost.
      drop(1);
      ignoreErrors(() => onError(err instanceof Error ? err : new Error(String(err))));
      return;
    }
    queue.push(line);
    accepted++;
    if (!pumpScheduled && !awaitingDrain) {
      pumpScheduled = true;
      // Off the caller's stack: a synchronous destination (a file or a TTY as stdout) never
      // delays the call, and entries of one tick go out in one write.
      setImmediate(pump);
    }
  };

  const summary = createAuditSummary(options.summary ?? {}, enqueue);
  const write = (entry: AuditEntry) => {
    if (summary.admit(entry)) enqueue(entry);
  };

  const flush = () =>
    new Promise<void>((resolve, reject) => {
      flushes.push({ upTo: accepted, resolve, reject });
      settleFlushes();
    });

  const close = async () => {
    if (!closed) summary.stop();
    closed = true;
    try {
      await flush();
    } finally {
      if (reportTimer !== undefined) clearTimeout(reportTimer);
      if (dropped > reportedDropped) report();
    }
    if (destination === process.stdout || destination === process.stderr) return;
    await new Promise<void>((resolve, reject) => {
      if (destination.writableFinished) return resolve();
      destination.once("finish", resolve);
      destination.once("error", reject);
      destination.end();
    });
  };

  return {
    write,
    flush,
    close,
    stats: () => ({ written, dropped, queued: accepted - written }),
  };
}

/** Runs a callback of the caller's whose failure must not break the log (or the call writing). */
function ignoreErrors(callback: () => void) {
  try {
    callback();
  } catch {
    // Nothing better to do: the callbacks are how the log reports its own problems.
  }
}

function openFile(options: AuditLogOptions): Writable {
  const { path, maxBytes = 100 * 1024 * 1024, keep = 5 } = options;
  if (path === undefined) {
    throw new TypeError("createAuditLog needs a destination or a path");
  }
  return createRotatingFile({ path, maxBytes, keep });
}

function warnDropped(totalDropped: number) {
  console.warn(`audit log: ${totalDropped} entries dropped so far`);
}

function logError(err: Error) {
  console.error("audit log: the destination failed; entries are dropped", err);
}
