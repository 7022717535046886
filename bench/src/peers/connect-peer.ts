/**
 * A bare connect-node server: UserService.GetUser answers a fixed user, StreamUserActivities sends
 * a fixed number of activities. No interceptors, no store. Prints the port once listening.
 *
 *   node --conditions=source bench/src/peers/connect-peer.ts [PORT]
 */
import * as http2 from "node:http2";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { UserService } from "@keel/gen/user/v1/user_pb";
import {
  benchActivity,
  benchUserResponse,
  defaultStreamMessages,
  portArgument,
} from "./fixtures.ts";

function routes(router: ConnectRouter): void {
  router.service(UserService, {
    getUser: (req) => benchUserResponse(req.userId),
    async *streamUserActivities() {
      for (let n = 1; n <= defaultStreamMessages; n++) yield benchActivity(n);
    },
  });
}

const server = http2.createServer(
  { settings: { maxConcurrentStreams: 1000 } },
  connectNodeAdapter({ routes }),
);
server.listen(portArgument(process.argv), "127.0.0.1", () => {
  const address = server.address();
  process.stdout.write(`${typeof address === "object" && address !== null ? address.port : ""}\n`);
});
process.on("SIGTERM", () => process.exit(0));
