import * as dgram from "node:dgram";
import { once } from "node:events";
import { isIP } from "node:net";

/** A DNS server on 127.0.0.1 (UDP) answering A and AAAA queries from records the test sets. */
export interface DnsServer {
  /** Its port: give the resolver `127.0.0.1:${port}`. */
  port: number;
  /** Sets the addresses of `name` (IPv4 and IPv6 mixed); none makes it unknown (NXDOMAIN). */
  set(name: string, addresses: string[]): void;
  /** How many queries for `name` were answered so far. */
  queries(name: string): number;
  close(): Promise<void>;
}

const typeA = 1;
const typeAAAA = 28;

/**
 * Starts a DNS server that answers every query from the records set, with a TTL of 0: A and
 * AAAA records of a known name (an empty answer when it has none of the type asked), NXDOMAIN for
 * any other name, and NOTIMP for anything but a standard query.
 */
export async function startDnsServer(): Promise<DnsServer> {
  const records = new Map<string, string[]>();
  const counts = new Map<string, number>();
  const socket = dgram.createSocket("udp4");
  socket.on("message", (query, peer) => {
    const answer = respond(query, records, counts);
    if (answer !== undefined) socket.send(answer, peer.port, peer.address);
  });
  socket.bind(0, "127.0.0.1");
  await once(socket, "listening");
  return {
    port: socket.address().port,
    set(name, addresses) {
      if (addresses.length === 0) records.delete(name.toLowerCase());
      else records.set(name.toLowerCase(), addresses);
    },
    queries: (name) => counts.get(name.toLowerCase()) ?? 0,
    async close() {
      socket.close();
      await once(socket, "close");
    },
  };
}

/** The response to one query (RFC 1035 section 4), or undefined for a packet too short to answer. */
function respond(
  query: Buffer,
  records: Map<string, string[]>,
  counts: Map<string, number>,
): Buffer | undefined {
  if (query.length < 12) return undefined;
  const labels: string[] = [];
  let at = 12;
  while (at < query.length && query[at] !== 0) {
    const length = query[at] as number;
    labels.push(query.toString("latin1", at + 1, at + 1 + length));
    at += 1 + length;
  }
  const questionEnd = at + 5; // the root label, QTYPE and QCLASS
  if (questionEnd > query.length) return undefined;
  const qtype = query.readUInt16BE(at + 1);
  const name = labels.join(".").toLowerCase();
  counts.set(name, (counts.get(name) ?? 0) + 1);
  const opcode = (query.readUInt16BE(2) >> 11) & 0xf;
  const known = records.get(name);
  const family = qtype === typeA ? 4 : qtype === typeAAAA ? 6 : 0;
  const addresses = (known ?? []).filter((a) => isIP(a) === family);
  const rcode = opcode !== 0 ? 4 : known === undefined ? 3 : 0;
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.readUInt16BE(0), 0); // the query's id
  // QR, the query's opcode and RD; AA and RA; the response code.
  header.writeUInt16BE(
    0x8000 | (opcode << 11) | 0x0400 | (query.readUInt16BE(2) & 0x0100) | 0x0080 | rcode,
    2,
  );
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(rcode === 0 ? addresses.length : 0, 6);
  const answers = rcode !== 0 ? [] : addresses.map((address) => record(qtype, address));
  return Buffer.concat([header, query.subarray(12, questionEnd), ...answers]);
}

/** One answer record for the question's name (a pointer to offset 12), TTL 0. */
function record(qtype: number, address: string): Buffer {
  const data = qtype === typeA ? Buffer.from(address.split(".").map(Number)) : ipv6Bytes(address);
  const head = Buffer.alloc(12);
  head.writeUInt16BE(0xc00c, 0);
  head.writeUInt16BE(qtype, 2);
  head.writeUInt16BE(1, 4); // class IN
  head.writeUInt32BE(0, 6); // TTL
  head.writeUInt16BE(data.length, 10);
  return Buffer.concat([head, data]);
}

function ipv6Bytes(address: string): Buffer {
  const [left = "", right] = address.split("::");
  const groups = (part: string) => (part === "" ? [] : part.split(":"));
  const head = groups(left);
  const tail = right === undefined ? [] : groups(right);
  const all = [...head, ...Array(8 - head.length - tail.length).fill("0"), ...tail];
  const bytes = Buffer.alloc(16);
  for (const [i, group] of all.entries()) bytes.writeUInt16BE(Number.parseInt(group, 16), i * 2);
  return bytes;
}
