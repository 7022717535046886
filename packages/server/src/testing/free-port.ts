import { once } from "node:events";
import { type AddressInfo, createServer } from "node:net";

/** A free port of 127.0.0.1, released again for another process (nginx, a server) to bind. */
export async function freePort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, "close");
  return port;
}
