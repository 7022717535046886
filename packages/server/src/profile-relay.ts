import cluster, { type Worker } from "node:cluster";
import { type ProfileKind, ProfilerBusyError, takeProfile } from "@keel/observability";
import { type ProfileRequest, ProfileRequestError, type TakenProfile } from "./profile-endpoint.ts";

/** Messages between the cluster primary and a worker about one profile. */
type ProfileMessage =
  | { keel: "profile"; id: number; kind: ProfileKind; seconds: number }
  | { keel: "profile-cancel"; id: number }
  | { keel: "profile-done"; id: number; path: string }
  | { keel: "profile-failed"; id: number; busy: boolean; message: string };

let nextId = 1;

/**
 * The primary's side: takes a profile in the worker asked for (`worker=ID`), or else in the
 * started worker with the lowest id, since the work happens in the workers, not in the primary.
 * Only workers that have started (`started(id)`) are asked: before that they would not hear. The
 * worker writes the file; the primary sends it on. A caller going away cancels the recording.
 */
export function takeProfileInWorker(
  request: ProfileRequest,
  started: (id: number) => boolean,
): Promise<TakenProfile> {
  const live = Object.values(cluster.workers ?? {})
    .filter((w): w is Worker => w !== undefined && w.isConnected() && started(w.id))
    .sort((a, b) => a.id - b.id);
  const worker = request.worker === undefined ? live[0] : live.find((w) => w.id === request.worker);
  if (worker === undefined) {
    return Promise.reject(
      new ProfileRequestError(
        404,
        `no worker ${request.worker ?? ""} to profile; workers: ${live.map((w) => w.id).join(", ") || "none"}`,
      ),
    );
  }
  const id = nextId++;
  return new Promise<TakenProfile>((resolve, reject) => {
    const done = () => {
      worker.off("message", onMessage);
      worker.off("exit", onExit);
      request.signal.removeEventListener("abort", onAbort);
    };
    const onMessage = (message: ProfileMessage) => {
      if (message.id !== id) return;
      if (message.keel === "profile-done") {
        done();
        resolve({ path: message.path, worker: worker.id });
      } else if (message.keel === "profile-failed") {
        done();
        reject(
          message.busy
            ? new ProfilerBusyError(message.message)
            : new Error(`worker ${worker.id}: ${message.message}`),
        );
      }
    };
    const onExit = () => {
      done();
      reject(new ProfileRequestError(503, `worker ${worker.id} exited during the profile`));
    };
    const onAbort = () => {
      if (worker.isConnected()) worker.send({ keel: "profile-cancel", id });
    };
    worker.on("message", onMessage);
    worker.once("exit", onExit);
    request.signal.addEventListener("abort", onAbort, { once: true });
    worker.send({ keel: "profile", id, kind: request.kind, seconds: request.seconds });
  });
}

/** A worker's side: takes the profiles its primary asks for and tells it where the file is. */
export function answerProfileRequests(): void {
  const running = new Map<number, AbortController>();
  process.on("message", (message: ProfileMessage) => {
    if (message.keel === "profile-cancel") running.get(message.id)?.abort();
    if (message.keel !== "profile") return;
    const controller = new AbortController();
    running.set(message.id, controller);
    const reply = (answer: ProfileMessage) => process.send?.(answer);
    takeProfile({ kind: message.kind, seconds: message.seconds, signal: controller.signal })
      .then(
        (path) => reply({ keel: "profile-done", id: message.id, path }),
        (err: unknown) =>
          reply({
            keel: "profile-failed",
            id: message.id,
            busy: err instanceof ProfilerBusyError,
            message: err instanceof Error ? err.message : String(err),
          }),
      )
      .finally(() => running.delete(message.id));
  });
}
