import { type FileHandle, open, rename, stat, unlink } from "node:fs/promises";
import { Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";

/** A rotation lock older than this was left by a process that died while rotating. */
const staleLockMs = 10_000;

export interface RotatingFileOptions {
  /** The file appended to; created with mode 0o600 (owner read and write only). */
  path: string;
  /**
   * Before a write would take the file past this many bytes it is rotated: renamed to `path.1`
   * (`path.1` to `path.2`, and so on) and a new file started. A single line longer than this
   * still goes whole into a file of its own. 0: never rotate.
   */
  maxBytes: number;
  /** How many rotated files are kept (`path.1` … `path.keep`), at least 1; older ones are overwritten. */
  keep: number;
}

/**
 * A Writable appending newline-terminated records to a file that rotates by size. Chunks are cut
 * only after a newline, so no record is ever split across two files, and one chunk's records go
 * out in order. Several processes may append to the same path (cluster workers): each checks the
 * file's real size before writing (appends are atomic) and reopens the path when another process
 * rotated it; one rotation runs at a time, under the lock file `path.lock`.
 */
export function createRotatingFile(options: RotatingFileOptions): Writable {
  const { path, maxBytes, keep } = options;
  let file: FileHandle | undefined;

  const reopen = async () => {
    await file?.close();
    file = undefined;
    file = await open(path, "a", 0o600);
  };

  /**
   * Shifts path.(keep-1) → path.keep … path → path.1 under the lock, unless another process did
   * already; waits a moment when another holds the lock. Then reopens the path.
   */
  const rotate = async (current: FileHandle) => {
    const lockPath = `${path}.lock`;
    const lock = await open(lockPath, "wx", 0o600).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== "EEXIST") throw err;
      const held = await stat(lockPath).catch(() => undefined);
      if (held !== undefined && Date.now() - held.mtimeMs > staleLockMs) {
        await unlink(lockPath).catch(ignoreMissing);
      } else {
        await sleep(10);
      }
      return undefined;
    });
    if (lock !== undefined) {
      try {
        if ((await sizeIfCurrent(current)) !== undefined) {
          for (let i = keep - 1; i >= 1; i--) {
            await rename(`${path}.${i}`, `${path}.${i + 1}`).catch(ignoreMissing);
          }
          await rename(path, `${path}.1`).catch(ignoreMissing);
        }
      } finally {
        await lock.close();
        await unlink(lockPath).catch(ignoreMissing);
      }
    }
    await reopen();
  };

  /**
   * The size of the file `current` writes to, if the path still names it; undefined when another
   * process rotated it.
   */
  const sizeIfCurrent = async (current: FileHandle) => {
    const [ours, named] = await Promise.all([current.stat(), stat(path).catch(() => undefined)]);
    return named?.ino === ours.ino && named.dev === ours.dev ? ours.size : undefined;
  };

  const append = async (bytes: Buffer) => {
    await opened;
    let start = 0;
    while (start < bytes.length) {
      if (file === undefined) await reopen();
      const current = file as FileHandle;
      const size = maxBytes > 0 ? await sizeIfCurrent(current) : 0;
      if (size === undefined) {
        // Rotated by another process: what is written to the old file now could be rotated away.
        await reopen();
        continue;
      }
      const room = maxBytes > 0 ? maxBytes - size : bytes.length;
      // Whole records only: up to the last newline that fits, or one whole record in an empty file.
      let end = lastRecordEnd(bytes, start, start + room);
      if (end === start) {
        if (size > 0) {
          await rotate(current);
          continue;
        }
        end = nextRecordEnd(bytes, start);
      }
      await current.appendFile(bytes.subarray(start, end));
      start = end;
    }
  };

  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      append(chunk).then(() => done(), done);
    },
    final(done) {
      const closing = file?.close();
      file = undefined;
      Promise.resolve(closing).then(() => done(), done);
    },
    destroy(err, done) {
      const closing = file?.close();
      file = undefined;
      Promise.resolve(closing).then(
        () => done(err),
        () => done(err),
      );
    },
  });
  // Opened at once, so that a path that cannot be written is reported before the first record.
  const opened = reopen();
  opened.catch((err: Error) => stream.destroy(err));
  return stream;
}

/** The end (after its newline) of the last record that ends at or before `limit`; `start` if none. */
function lastRecordEnd(bytes: Buffer, start: number, limit: number): number {
  if (limit >= bytes.length) return bytes.length;
  if (limit <= start) return start;
  const newline = bytes.lastIndexOf(0x0a, limit - 1);
  return newline < start ? start : newline + 1;
}

/** The end (after its newline) of the record starting at `start`. */
function nextRecordEnd(bytes: Buffer, start: number): number {
  const newline = bytes.indexOf(0x0a, start);
  return newline < 0 ? bytes.length : newline + 1;
}

function ignoreMissing(err: NodeJS.ErrnoException): void {
  if (err.code !== "ENOENT") throw err;
}
