import { parentPort, workerData } from "node:worker_threads";
import { createShard, type ShardOptions } from "./perf-shard.ts";

// A thread of `keel perf --threads N`: warms up its shard, says so, measures when told to go,
// keeps its count of finished calls in the shared `progress`, and sends its result.

const { options, progress } = workerData as { options: ShardOptions; progress: Int32Array };
const port = parentPort;
if (port === null) throw new Error("perf-worker runs as a worker thread of keel perf");

const shard = createShard(options);
await shard.warmUp();
port.postMessage("ready");
port.once("message", async () => {
  const run = shard.run();
  const publish = () => Atomics.store(progress, 0, run.progress.completed);
  const timer = setInterval(publish, 50);
  const result = await run.result;
  clearInterval(timer);
  publish();
  port.postMessage(result, [
    result.byCode.buffer as ArrayBuffer,
    result.latencies.counts.buffer as ArrayBuffer,
  ]);
});
