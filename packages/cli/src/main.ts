#!/usr/bin/env node
// keel's entry point. It checks the Node.js version before anything else is loaded: the code it
// runs uses Node 24 (type stripping in development, node:sqlite in the server it starts), and an
// older Node fails with a message of its own. Keep this file free of static imports.
const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
if (major < 24 || (major === 24 && minor < 11)) {
  process.stderr.write(
    `keel: needs Node.js 24.11 or newer, and ${process.execPath} is ${process.version}; run it with ./dev keel … (the pinned Node.js), or install Node.js 24\n`,
  );
  process.exit(1);
}
await import("./keel.ts");
