#!/usr/bin/env node
// keel-server's entry point. It checks the Node.js version before anything else is loaded: the
// server's modules import node:sqlite, which an older Node cannot even link, so a check inside
// them would never run. Keep this file free of static imports.
const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
if (major < 24 || (major === 24 && minor < 11)) {
  process.stderr.write(
    `keel-server: needs Node.js 24.11 or newer, and ${process.execPath} is ${process.version}; run it with ./dev server … (the pinned Node.js), or install Node.js 24\n`,
  );
  process.exit(1);
}
await import("./keel-server.ts");
