/**
 * An anonymous sign-up flood from one address against another user's Login, as the security
 * review ran it: does hashing passwords for the flood starve everyone else?
 *
 *   ./dev build
 *   ./dev node --conditions=source bench/src/sign-up-flood.ts [--seconds=10] [--rate=100]
 *     [--in-flight=64] [--default-limits]
 *     [--server-root=DIR]   (another checkout's build, for example the commit before the fix)
 *
 * Our server runs on CPU 1 with its defaults, except that the per-address rate limits of Login
 * and CreateUser are lifted on purpose (unless `--default-limits`): they would stop a one-address
 * flood on their own, and what is measured here is what protects the server when they do not
 * (many addresses, or limits set high). The flood comes from 127.0.0.2: `--rate` CreateUser calls a second, open loop (at most
 * `--in-flight` unanswered; the review's flood was 50/s), with fresh names, each a
 * password hash); the victim from 127.0.0.1 logs in, and calls GetUser with a fresh token each
 * time (so that the token is verified, not found in the cache), 20 times each, one at a time
 * after a random pause (logins come at any moment, not just as the flood's next hash starts),
 * first on an idle server, then during the flood. Prints medians and the flood's outcomes.
 */
import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { checkBuilt, keelEnvironment } from "./keel-setup.ts";
import { killAll, pinThisProcess, stopAllOnSignals } from "./launch.ts";
import { median, percentile } from "./stats.ts";
import { startKeel } from "./targets.ts";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "10" },
    "in-flight": { type: "string", default: "64" },
    rate: { type: "string", default: "100" },
    // Keep the default per-address CreateUser limit (10 a minute): the flood then meets it first.
    "default-limits": { type: "boolean", default: false },
    "server-root": { type: "string", default: resolve(import.meta.dirname, "../..") },
  },
});
const floodSeconds = Number(values.seconds);
const inFlight = Number(values["in-flight"]);
const rate = Number(values.rate);
const samples = 20;
const password = "correct horse battery";

stopAllOnSignals("sign-up-flood");
pinThisProcess(0);
const { main, warning } = checkBuilt(values["server-root"] as string);
if (warning !== undefined) console.warn(warning);
const work = mkdtempSync(join(tmpdir(), "keel-flood-"));
const base = keelEnvironment(join(work, "data"));
const secret = base.KEEL_JWT_SECRET as string;
const env = {
  ...base,
  KEEL_LOGIN_RATE_LIMIT_PER_MINUTE: "1000000",
  KEEL_LOGIN_RATE_LIMIT_BURST: "1000000",
  ...(values["default-limits"]
    ? {}
    : {
        KEEL_CREATE_USER_RATE_LIMIT_PER_MINUTE: "1000000",
        KEEL_CREATE_USER_RATE_LIMIT_BURST: "1000000",
      }),
};
const server = await startKeel({ main, env, cpu: 1, logFile: join(work, "server.log") });
try {
  const baseUrl = `http://127.0.0.1:${server.port}`;
  const victim = createClient(UserService, createGrpcTransport({ baseUrl }));
  const flood = createClient(
    UserService,
    createGrpcTransport({
      baseUrl,
      nodeOptions: {
        createConnection: () =>
          connect({ host: "127.0.0.1", port: server.port, localAddress: "127.0.0.2" }),
      },
    }),
  );
  const { user } = await victim.createUser({
    username: "victim",
    email: "victim@example.com",
    password,
  });
  const userId = user?.userId ?? 0n;
  let n = 0;
  // Signed here with the server's secret, as the `token` command does: a new `jti` each time.
  const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const freshToken = async () => {
    const exp = Math.floor(Date.now() / 1000) + 300;
    const claims = {
      typ: "access",
      roles: [],
      iss: "keel",
      aud: "keel",
      sub: String(userId),
      jti: `fresh-${++n}`,
      exp,
    };
    const input = `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}`;
    const signature = createHmac("sha256", secret).update(input).digest("base64url");
    return `${input}.${signature}`;
  };

  /**
   * Milliseconds of `samples` calls one after another, each after a random pause of up to 200 ms:
   * a user's login comes at any moment, while one sent the instant the last one ended always
   * arrives as the flood's next hash starts (the end of ours is what starts it).
   */
  const time = async (call: () => Promise<unknown>): Promise<number[]> => {
    const ms: number[] = [];
    for (let i = 0; i < samples; i++) {
      await new Promise((r) => setTimeout(r, Math.random() * 200));
      const started = performance.now();
      await call();
      ms.push(performance.now() - started);
    }
    return ms;
  };
  const login = () => victim.login({ username: "victim", password });
  const getUser = async () => {
    const headers = { authorization: `Bearer ${await freshToken()}` };
    const started = performance.now();
    await victim.getUser({ userId }, { headers });
    return performance.now() - started;
  };
  const timeGetUser = async () => {
    const ms: number[] = [];
    for (let i = 0; i < samples; i++) ms.push(await getUser());
    return ms;
  };

  await time(login); // warm-up
  const idle = { login: await time(login), getUser: await timeGetUser() };

  const outcomes = new Map<string, number>();
  let running = true;
  let created = 0;
  let open = 0;
  let sent = 0;
  const fire = () => {
    if (!running || open >= inFlight) return;
    open++;
    const name = `flood${sent++}`;
    void flood
      .createUser({ username: name, email: `${name}@example.com`, password })
      .then(
        () => "OK",
        (err: unknown) => Code[ConnectError.from(err).code] as string,
      )
      .then((code) => {
        open--;
        if (code === "OK") created++;
        outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
      });
  };
  const floodStarted = performance.now();
  // Open loop: a call every 1/rate s whatever the answers, as an attacker sends.
  const ticker = setInterval(() => {
    for (let i = 0; i < rate / 100; i++) fire();
  }, 10);
  await new Promise((r) => setTimeout(r, 2000));
  const loaded = { login: await time(login), getUser: await timeGetUser() };
  const remaining = floodSeconds * 1000 - (performance.now() - floodStarted);
  if (remaining > 0) await new Promise((r) => setTimeout(r, remaining));
  running = false;
  clearInterval(ticker);
  while (open > 0) await new Promise((r) => setTimeout(r, 10));
  const floodMs = performance.now() - floodStarted;

  const row = (name: string, a: number[], b: number[]) => {
    const sorted = (v: number[]) => [...v].sort((x, y) => x - y);
    const [ia, la] = [median(a), median(b)];
    return `| ${name} | ${ia.toFixed(1)} | ${percentile(sorted(a), 90).toFixed(1)} | ${la.toFixed(1)} | ${percentile(sorted(b), 90).toFixed(1)} | ${(la / ia).toFixed(2)}× |`;
  };
  console.log(`\nserver: ${main}`);
  console.log(
    `flood: ${rate} CreateUser calls/s (at most ${inFlight} unanswered) from 127.0.0.2 for ${(floodMs / 1000).toFixed(1)} s: ${[
      ...outcomes,
    ]
      .map(([code, count]) => `${code} ${count}`)
      .join(", ")} (${(created / (floodMs / 1000)).toFixed(1)} sign-ups/s)\n`,
  );
  console.log(
    "| call from 127.0.0.1 (ms) | idle p50 | idle p90 | flood p50 | flood p90 | flood/idle |",
  );
  console.log("| --- | --: | --: | --: | --: | --: |");
  console.log(row("Login", idle.login, loaded.login));
  console.log(row("GetUser, fresh token", idle.getUser, loaded.getUser));
} finally {
  await server.stop();
  killAll();
  rmSync(work, { recursive: true, force: true });
}
