/**
 * A bare connect-node server: UserService.GetUser answers a fixed user, StreamUserActivities sends
 * a fixed number of activities. No interceptors, no store. Prints the port once listening.
 *
 *   node --conditions=source bench/src/peers/connect-peer.ts [PORT]
 */
import * as http2 from "node:http2";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { benchRoutes, portArgument } from "./fixtures.ts";

const server = http2.createServer(
  { settings: { maxConcurrentStreams: 1000 } },
  connectNodeAdapter({ routes: benchRoutes }),
);
server.listen(portArgument(process.argv), "127.0.0.1", () => {
  const address = server.address();
  process.stdout.write(`${typeof address === "object" && address !== null ? address.port : ""}\n`);
});
process.on("SIGTERM", () => process.exit(0));
