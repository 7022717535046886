// Loaded with `--import` into a server process of a test: keeps its event loop busy with real
// CPU work, 20 ms at a time, with calls served in between, as a server whose other work (or a
// noisy neighbour on its core) leaves little room for calls.
function burn(): void {
  const end = performance.now() + 20;
  while (performance.now() < end);
  setImmediate(burn);
}
setImmediate(burn);
