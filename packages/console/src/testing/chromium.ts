import { existsSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";

/** Debian's Chromium; scripts/ci-system-deps.sh installs it. Nothing is downloaded by playwright. */
export const chromiumPath = "/usr/bin/chromium";

/**
 * Why the browser tests cannot run here, or undefined when they can. Missing Chromium is a reason
 * to skip on a developer's machine, but never in CI (`CI=true`): there it is a failure, reported by
 * `launchChromium`.
 */
export function chromiumSkipReason(): string | undefined {
  if (existsSync(chromiumPath) || process.env.CI === "true") return undefined;
  return `Debian's chromium is not installed at ${chromiumPath}: run scripts/ci-system-deps.sh (as root) to run the browser tests`;
}

/** Starts headless Chromium with a fresh profile (playwright makes a temporary one). */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(chromiumPath)) {
    throw new Error(
      `CI=true and Debian's chromium is not installed at ${chromiumPath}: run scripts/ci-system-deps.sh`,
    );
  }
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}
