/**
 * A bare @keel/engine server: the same fixed answers as `connect-peer.ts` and `grpc-js-peer.ts`
 * (UserService.GetUser a fixed user, StreamUserActivities a fixed number of activities), no
 * interceptors, no store: what the engine itself costs. Prints the port once listening.
 *
 *   node --conditions=source bench/src/peers/engine-peer.ts [PORT]
 */
import * as http2 from "node:http2";
import { createEngine } from "@keel/engine";
import { benchRoutes, portArgument } from "./fixtures.ts";

const engine = createEngine({ routes: benchRoutes });
const server = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
server.on("stream", (stream, headers) => {
  if (!engine.handleStream(stream, headers))
    stream.respond({ ":status": 404 }, { endStream: true });
});
server.listen(portArgument(process.argv), "127.0.0.1", () => {
  const address = server.address();
  process.stdout.write(`${typeof address === "object" && address !== null ? address.port : ""}\n`);
});
process.on("SIGTERM", () => process.exit(0));
