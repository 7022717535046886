import * as http from "node:http";

/**
 * Sends an HTTP/1.1 request with `body`, ending it unless `finish` is false (the rest of the body
 * then never comes), and resolves with the response once it has been read whole; the connection
 * is then dropped.
 */
export function sendBody(
  baseUrl: string,
  request: { method: string; path: string; headers: http.OutgoingHttpHeaders },
  body: string,
  finish: boolean,
): Promise<{ status: number; text: string }> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, ...request });
    req.on("error", reject);
    req.on("response", async (res) => {
      let text = "";
      for await (const chunk of res) text += String(chunk);
      resolve({ status: res.statusCode ?? 0, text });
      req.destroy();
    });
    req.write(body);
    if (finish) req.end();
  });
}
