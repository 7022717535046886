import assert from "node:assert/strict";
import * as http2 from "node:http2";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { accessToken, startRestServer } from "./testing/rest-server.ts";
import { sendBody } from "./testing/send-body.ts";

const kib = 1024;
const limits = {
  readMaxBytes: 256 * kib,
  bufferedBytesPerConnection: 96 * kib,
  bufferedBytesPerProcess: 160 * kib,
  bodyIdleTimeoutMs: 1000,
};
const authorization = `Bearer ${accessToken("7", ["admin"])}`;
const createUser = {
  method: "POST",
  path: "/api/v1/users",
  headers: { "content-type": "application/json", authorization },
};
/** The start of a CreateUser body whose username is `n` bytes long (no more than that is sent). */
const bodyStart = (n: number) => `{"username": "${"x".repeat(n)}`;

interface Answer {
  status: number;
  text: string;
}

/** A CreateUser request on an HTTP/2 session, its body started; `finish` ends it. */
function startOnSession(session: http2.ClientHttp2Session, start: string) {
  const stream = session.request({
    ":method": "POST",
    ":path": createUser.path,
    ...createUser.headers,
  });
  const answer = new Promise<Answer>((resolve, reject) => {
    let status = 0;
    let text = "";
    stream.on("response", (headers) => {
      status = Number(headers[":status"]);
    });
    stream.on("data", (chunk) => {
      text += String(chunk);
    });
    stream.on("end", () => resolve({ status, text }));
    stream.on("error", reject);
  });
  stream.write(start);
  return { answer, finish: () => stream.end('"}') };
}

const errorOf = (answer: Answer) => JSON.parse(answer.text).error;

/**
 * REST request bodies are read by the engine, within the limits a body of gRPC or Connect is:
 * the bytes one connection and all of them may hold at once, a body that stalls, the size.
 */
describe("REST request bodies, within the engine's limits", () => {
  let server: Awaited<ReturnType<typeof startRestServer>>;
  before(async () => {
    server = await startRestServer(limits);
  });
  after(() => server.close());

  for (const [version, urlOf] of [
    ["HTTP/2", () => server.h2Url],
    ["HTTP/2, raw streams", () => server.h2RawUrl],
  ] as const) {
    it(`${version}: a body that would take its connection past its budget gets 429; the others go on`, async () => {
      const session = http2.connect(urlOf());
      try {
        const first = startOnSession(session, bodyStart(64 * kib));
        // Its bytes reach the server before the second body's.
        await sleep(100);
        const second = startOnSession(session, bodyStart(64 * kib));
        const refused = await second.answer;
        assert.equal(refused.status, 429, refused.text);
        assert.equal(
          errorOf(refused).message,
          `this connection is holding its limit of ${96 * kib} bytes of request data; send less at once, or retry later`,
        );
        first.finish();
        const served = await first.answer;
        assert.equal(served.status, 200, served.text);
        assert.equal(
          JSON.parse(served.text).user.username.length,
          64 * kib,
          served.text.slice(0, 80),
        );
      } finally {
        session.close();
      }
    });
  }

  it("HTTP/1.1: bodies together past the process's budget get 429; bodies that stall, 504", async () => {
    const parked = [1, 2].map(() => sendBody(server.h1Url, createUser, bodyStart(64 * kib), false));
    await sleep(100);
    const refused = await sendBody(server.h1Url, createUser, bodyStart(64 * kib), false);
    assert.equal(refused.status, 429, refused.text);
    assert.equal(
      errorOf(refused).message,
      `the server is holding its limit of ${160 * kib} bytes of request data; send less at once, or retry later`,
    );
    // The two that held the bytes never end: each fails once it has gone a second without a byte.
    for (const stalled of await Promise.all(parked)) {
      assert.equal(stalled.status, 504, stalled.text);
      assert.equal(errorOf(stalled).message, "the request body stalled: no data for 1000 ms");
    }
  });

  it("refuses a declared content-length over the size limit before the body is sent", async () => {
    const declared = {
      ...createUser,
      headers: { ...createUser.headers, "content-length": String(1024 * kib) },
    };
    const refused = await sendBody(server.h1Url, declared, "", false);
    assert.equal(refused.status, 413, refused.text);
    assert.equal(errorOf(refused).message, `the request body is larger than ${256 * kib} bytes`);
  });

  it("gives back every byte it held: a body near a connection's whole budget still goes through", async () => {
    const body = bodyStart(90 * kib);
    const h1 = await sendBody(server.h1Url, createUser, `${body}"}`, true);
    assert.equal(h1.status, 200, h1.text);
    for (const url of [server.h2Url, server.h2RawUrl]) {
      const session = http2.connect(url);
      try {
        const call = startOnSession(session, body);
        call.finish();
        const answer = await call.answer;
        assert.equal(answer.status, 200, `${url}: ${answer.text}`);
      } finally {
        session.close();
      }
    }
  });
});
