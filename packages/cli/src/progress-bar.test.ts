import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { WriteStream } from "node:tty";
import { startProgressBar } from "./progress-bar.ts";

describe("startProgressBar", () => {
  it("redraws one line in place and erases it when stopped", async () => {
    let output = "";
    const stream = {
      columns: 60,
      write(text: string) {
        output += text;
        return true;
      },
    } as unknown as WriteStream;
    let completed = 0;
    const stop = startProgressBar({
      stream,
      fraction: () => completed / 100,
      completed: () => completed,
      intervalMs: 5,
    });
    completed = 42;
    await sleep(30);
    stop();
    const erase = "\x1b[K";
    assert.match(output, /\r\[#+-+\] +42% {2}42 calls {2}\d+\/s/);
    assert.ok(output.includes(`/s${erase}`));
    assert.ok(output.endsWith(`\r${erase}`));
    assert.doesNotMatch(output, /\n/);
  });
});
