import { once } from "node:events";
import * as http from "node:http";
import type { AddressInfo } from "node:net";

export interface StaticSite {
  /** Its origin, for example `http://127.0.0.1:40124`. */
  origin: string;
  close(): void;
}

/** Serves fixed files (path → [content type, body]) on a free port: another origin for a page. */
export async function serveStaticSite(
  files: Record<string, [string, string]>,
): Promise<StaticSite> {
  const server = http.createServer((req, res) => {
    const file = files[req.url ?? ""];
    res.writeHead(file ? 200 : 404, { "content-type": file?.[0] ?? "text/plain" });
    res.end(file?.[1] ?? "not found");
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}
