import { type FSWatcher, watch } from "node:fs";
import { basename, dirname } from "node:path";
import type { Logger } from "pino";
import {
  readTlsMaterial,
  summarizeCertificate,
  type TlsFiles,
  type TlsMaterial,
} from "./tls-material.ts";

export interface WatchTlsFilesOptions {
  /** The certificate, key and client CA files to watch. */
  files: TlsFiles;
  /** What is served now: a reload that reads the same bytes does nothing. */
  current: TlsMaterial;
  /** Serves `next` to new connections (connections already open keep theirs). */
  apply: (next: TlsMaterial) => void;
  /**
   * How long the files must be quiet before they are read, in ms: a renewal writes the
   * certificate and the key one after the other, and only the pair is served. Default 1000.
   */
  delayMs?: number;
  logger: Pick<Logger, "info" | "error">;
}

/**
 * Watches the directories of the TLS files (so that files replaced by a rename, or a Kubernetes
 * secret's symbolic link swap, are noticed too) and, once they have been quiet for `delayMs`,
 * reads them again. A certificate, key and client CA that can be served together are applied and
 * logged with the new certificate's serial number; anything else (a key that is not the
 * certificate's, a file that does not parse or cannot be read) is logged as rejected and the
 * running certificate stays, until the files change again.
 */
export function watchTlsFiles(options: WatchTlsFilesOptions): { close(): void } {
  let current = options.current;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const delayMs = options.delayMs ?? 1000;
  const reload = () => {
    readTlsMaterial(options.files).then(
      (next) => {
        if (closed || same(next, current)) return;
        options.apply(next);
        current = next;
        options.logger.info(
          { certificate: summarizeCertificate(next.cert) },
          "TLS certificate reloaded: new connections get the new one",
        );
      },
      (err: unknown) => {
        if (closed) return;
        options.logger.error(
          { problem: (err as Error).message },
          "TLS reload rejected; the running certificate stays",
        );
      },
    );
  };
  const paths = [options.files.cert, options.files.key, options.files.clientCa].filter(
    (p) => p !== undefined,
  );
  const names = new Set(paths.map((p) => basename(p)));
  const onChange = (_event: string, filename: string | null) => {
    // Other files in the directory (a busy log, say) are no reason to read these again; Kubernetes
    // swaps a secret's files through its `..data` link.
    if (filename !== null && !names.has(filename) && !filename.startsWith("..")) return;
    clearTimeout(timer);
    timer = setTimeout(reload, delayMs);
  };
  const dirs = new Set(paths.map((p) => dirname(p)));
  const watchers: FSWatcher[] = [...dirs].map((dir) => watch(dir, onChange));
  for (const watcher of watchers) watcher.unref();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      for (const watcher of watchers) watcher.close();
    },
  };
}

function same(a: TlsMaterial, b: TlsMaterial): boolean {
  const equal = (x: Buffer | undefined, y: Buffer | undefined) =>
    x === undefined || y === undefined ? x === y : x.equals(y);
  return a.cert.equals(b.cert) && a.key.equals(b.key) && equal(a.clientCa, b.clientCa);
}
