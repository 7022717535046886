import type { WriteStream } from "node:tty";

export interface ProgressBarOptions {
  /** Where to draw: a terminal. */
  stream: WriteStream;
  /** How far along the work is, from 0 to 1. */
  fraction: () => number;
  /** Calls finished so far. */
  completed: () => number;
  /** How often to redraw, in milliseconds. Default 200. */
  intervalMs?: number;
}

/**
 * Draws `[#####-----]  48%  12345 calls  24012/s` on one terminal line, redrawn in place; the rate
 * is that of the last interval. Returns a function that stops and erases it.
 */
export function startProgressBar(options: ProgressBarOptions): () => void {
  const { stream } = options;
  const intervalMs = options.intervalMs ?? 200;
  let lastCompleted = 0;
  let lastAt = performance.now();
  const draw = () => {
    const now = performance.now();
    const completed = options.completed();
    const rate = ((completed - lastCompleted) * 1000) / Math.max(1, now - lastAt);
    lastCompleted = completed;
    lastAt = now;
    const fraction = Math.min(1, Math.max(0, options.fraction()));
    const text = `${(fraction * 100).toFixed(0).padStart(4)}%  ${completed} calls  ${rate.toFixed(0)}/s`;
    const width = Math.max(10, Math.min(50, (stream.columns || 80) - text.length - 4));
    const done = Math.round(fraction * width);
    stream.write(`\r[${"#".repeat(done)}${"-".repeat(width - done)}] ${text}\x1b[K`);
  };
  const timer = setInterval(draw, intervalMs);
  // The bar never keeps the process alive by itself.
  timer.unref();
  return () => {
    clearInterval(timer);
    stream.write("\r\x1b[K");
  };
}
