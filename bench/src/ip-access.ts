/**
 * What IP allow and deny lists cost per call: the IP access interceptor with no lists, with a
 * short deny list, and with long allow and deny lists (IPv4 and IPv6), measured in alternating
 * rounds in one process, through the interceptor alone (its next is an answered promise).
 *
 *   ./dev node --conditions=source bench/src/ip-access.ts [--calls 200000] [--rounds 5]
 *
 * The last variant calls from 65536 addresses in turn, more than the interceptor remembers, so
 * that every call looks its address up in the ranges. Prints, per variant, the median over rounds of the ns per call (wall time of a loop of calls
 * awaited one by one) and its ratio to the interceptor with no lists.
 */
import { parseArgs } from "node:util";
import { createContextValues, type Interceptor } from "@connectrpc/connect";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { createIpAccess, peerKey } from "@keel/interceptors";
import { median } from "./stats.ts";

const { values } = parseArgs({
  options: {
    calls: { type: "string", default: "200000" },
    rounds: { type: "string", default: "5" },
  },
});
const calls = Number(values.calls);
const rounds = Number(values.rounds);

const many = (n: number, v6: boolean) =>
  Array.from({ length: n }, (_, i) =>
    v6 ? `2001:db8:${i.toString(16)}::/48` : `10.${i % 256}.${Math.floor(i / 256)}.0/24`,
  );
const variants: { name: string; interceptor: Interceptor; fresh?: boolean }[] = [
  { name: "no lists", interceptor: createIpAccess({ rules: {} }).interceptor },
  {
    name: "deny 2 ranges",
    interceptor: createIpAccess({ rules: { deny: ["203.0.113.0/24", "2001:db8:ff::/48"] } })
      .interceptor,
  },
  {
    name: "allow 200, deny 200",
    interceptor: createIpAccess({
      rules: {
        allow: [...many(100, false), ...many(100, true), "192.168.0.0/16"],
        deny: [
          ...many(100, true).map((r) => r.replace("2001:db8", "2001:db9")),
          ...many(100, false).map((r) => r.replace(/^10\./, "11.")),
        ],
      },
    }).interceptor,
  },
];
// The same long lists, each call from an address not seen lately: the lookups are not remembered.
variants.push({
  name: "long, new addresses",
  interceptor: createIpAccess({ rules: { allow: ["192.168.0.0/16", ...many(100, true)] } })
    .interceptor,
  fresh: true,
});

const method = UserService.method.getUser;
// Callers from a few addresses, every one of them let through.
const peers = ["192.168.1.10", "192.168.7.3", "::ffff:192.168.2.2", "192.168.200.9"];
const requests = peers.map((peer) => ({
  method,
  contextValues: createContextValues().set(peerKey, peer),
}));
// 65536 addresses in turn: more than the 10000 answers remembered, so every call looks up.
const freshRequests = Array.from({ length: 65_536 }, (_, i) => ({
  method,
  contextValues: createContextValues().set(peerKey, `192.168.${i >> 8}.${i & 255}`),
}));
const answered = Promise.resolve({});
const next = (() => answered) as unknown as Parameters<Interceptor>[0];

async function round(interceptor: Interceptor, fresh = false): Promise<number> {
  const call = interceptor(next);
  const start = performance.now();
  for (let i = 0; i < calls; i++) {
    const req = fresh ? freshRequests[i & 65_535] : requests[i & 3];
    await call(req as unknown as Parameters<typeof call>[0]);
  }
  return ((performance.now() - start) * 1e6) / calls;
}

for (const variant of variants) await round(variant.interceptor, variant.fresh);
const results = new Map<string, number[]>(variants.map((v) => [v.name, []]));
for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? variants : [...variants].reverse();
  for (const variant of order) {
    results.get(variant.name)?.push(await round(variant.interceptor, variant.fresh));
  }
}
const base = median(results.get("no lists") ?? []);
console.log(`${calls} calls per round, ${rounds} rounds; medians:`);
console.log("| variant             | ns/call | × no lists |");
console.log("| ------------------- | ------- | ---------- |");
for (const [name, list] of results) {
  const ns = median(list);
  console.log(
    `| ${name.padEnd(19)} | ${ns.toFixed(0).padStart(7)} | ${(ns / base).toFixed(2).padStart(10)} |`,
  );
}
