import { BlockList, isIP } from "node:net";

/** An address or CIDR range, parsed. */
interface Cidr {
  address: string;
  prefix: number;
  family: "ipv4" | "ipv6";
}

/**
 * Why `text` is not an address or CIDR range (`10.0.0.0/8`, `fd00::/8`, `10.0.0.7`), or
 * undefined when it is one.
 */
export function cidrProblem(text: string): string | undefined {
  const cidr = parseCidr(text);
  return typeof cidr === "string" ? cidr : undefined;
}

function parseCidr(text: string): Cidr | string {
  const slash = text.indexOf("/");
  const address = slash === -1 ? text : text.slice(0, slash);
  const version = isIP(address);
  const problem = `"${text}" is not an address or CIDR range such as 10.0.0.0/8 or fd00::/8`;
  if (version === 0 || address.includes("%")) return problem;
  const bits = version === 4 ? 32 : 128;
  const prefixText = slash === -1 ? String(bits) : text.slice(slash + 1);
  const prefix = Number(prefixText);
  if (!/^\d{1,3}$/.test(prefixText) || prefix > bits) {
    return `${problem}: the prefix length must be 0 to ${bits}`;
  }
  return { address, prefix, family: version === 4 ? "ipv4" : "ipv6" };
}

/** A set of address ranges: does it hold an address? */
export interface CidrList {
  /**
   * Whether `address` is in one of the ranges; an IPv4 range also holds the IPv4-mapped IPv6
   * form of its addresses (`::ffff:10.0.0.7`). Anything that is not an IP address is in none.
   */
  has(address: string): boolean;
}

/**
 * The ranges (addresses and CIDR ranges, IPv4 and IPv6) as one list, matched with `net.BlockList`.
 *
 * @throws Error starting with `label`, naming the first entry that is not an address or range.
 */
export function createCidrList(ranges: readonly string[], label: string): CidrList {
  const list = new BlockList();
  for (const text of ranges) {
    const cidr = parseCidr(text);
    if (typeof cidr === "string") throw new Error(`${label}: ${cidr}`);
    list.addSubnet(cidr.address, cidr.prefix, cidr.family);
  }
  return {
    has(address) {
      const version = isIP(address);
      return version !== 0 && list.check(address, version === 4 ? "ipv4" : "ipv6");
    },
  };
}
