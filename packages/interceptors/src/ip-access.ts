import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { AuditLog } from "./audit-log.ts";
import { type CidrList, createCidrList } from "./cidr.ts";
import { peerKey, requestIdKey } from "./context.ts";
import { perMethod } from "./per-method.ts";

/** Addresses and CIDR ranges (`10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7`) a rule names. */
export interface IpLists {
  /** When not empty, only clients in one of these ranges may call. Default: anyone. */
  allow?: readonly string[];
  /** Clients in any of these ranges may not call, whatever `allow` says. Default: none. */
  deny?: readonly string[];
}

/** The IP rules of the whole server and of single methods. */
export interface IpRules extends IpLists {
  /**
   * Rules of single methods, keyed as "package.Service/Method". A method's `deny` adds to the
   * global one; its `allow`, when not empty, replaces the global `allow` for that method (so a
   * method can be narrowed to an operator network, or opened to all with `0.0.0.0/0` and `::/0`
   * while the rest is not). Default: none.
   */
  methods?: Readonly<Record<string, IpLists>>;
}

export interface IpAccessOptions {
  /** The rules; `IpAccess.update` replaces them later. */
  rules: IpRules;
  /**
   * Where refused calls are recorded, every method's (a refusal happens before the audit
   * interceptor, which never sees the call). Default: nowhere.
   */
  audit?: Pick<AuditLog, "write">;
}

/** An IP access interceptor whose rules can be replaced while it serves. */
export interface IpAccess {
  interceptor: Interceptor;
  /** Applies new rules to the next call of every method (a configuration reload). */
  update(rules: IpRules): void;
}

/** What one method lets through: undefined lists let everyone through. */
interface Verdict {
  method: string;
  allow: CidrList | undefined;
  deny: CidrList | undefined;
}

/**
 * Refuses calls from client addresses outside the allow list or inside the deny list with
 * PERMISSION_DENIED, before any other work (no token is verified, no body read). The address is
 * `peerKey`: the socket's, or behind trusted proxies the client they name. An IPv4 range also
 * matches the IPv4-mapped IPv6 form of its addresses (`::ffff:10.0.0.7`). A client whose address
 * is not an IP address (a proxy's obfuscated `_name`, an unknown peer) is in no range: refused
 * where an allow list applies, let through otherwise. Each method's lists are compiled once, on
 * its first call; a call costs one or two range lookups. Place it right after the request id.
 *
 * @throws Error naming the first entry that is not an address or CIDR range.
 */
export function createIpAccess(options: IpAccessOptions): IpAccess {
  const audit = options.audit;
  let compiled = compile(options.rules);
  let verdictFor = perMethod((desc: DescMethod) => verdictOf(compiled, desc));

  const interceptor: Interceptor = (next) => (req) => {
    const verdict = verdictFor(req.method);
    if (verdict.allow === undefined && verdict.deny === undefined) return next(req);
    const peer = req.contextValues.get(peerKey);
    const denied =
      verdict.deny?.has(peer) === true || (verdict.allow !== undefined && !verdict.allow.has(peer));
    if (!denied) return next(req);
    const error = new ConnectError(
      `calls to ${verdict.method} are not accepted from this address (${peer || "unknown"})`,
      Code.PermissionDenied,
    );
    audit?.write({
      time: new Date().toISOString(),
      method: verdict.method,
      principal: null,
      peer,
      request_id: req.contextValues.get(requestIdKey),
      outcome: Code[Code.PermissionDenied],
      targets: { user_ids: [], order_ids: [] },
      error: error.rawMessage,
    });
    return Promise.reject(error);
  };

  return {
    interceptor,
    update(rules) {
      compiled = compile(rules);
      verdictFor = perMethod((desc: DescMethod) => verdictOf(compiled, desc));
    },
  };
}

interface Compiled {
  allow: readonly string[];
  deny: readonly string[];
  methods: Readonly<Record<string, IpLists>>;
}

/** The rules checked and copied; a bad entry throws here, not on a call. */
function compile(rules: IpRules): Compiled {
  const methods = rules.methods ?? {};
  for (const [method, lists] of Object.entries(methods)) {
    if (!/^[\w.]+\/\w+$/.test(method)) {
      throw new Error(`IP rules: method "${method}" is not of the form "pkg.Service/Method"`);
    }
    blockList([...(lists.allow ?? []), ...(lists.deny ?? [])]);
  }
  const compiled = { allow: rules.allow ?? [], deny: rules.deny ?? [], methods };
  blockList([...compiled.allow, ...compiled.deny]);
  return structuredClone(compiled);
}

function verdictOf(rules: Compiled, desc: DescMethod): Verdict {
  const method = `${desc.parent.typeName}/${desc.name}`;
  const own = rules.methods[method];
  const allow = own?.allow !== undefined && own.allow.length > 0 ? own.allow : rules.allow;
  const deny = [...rules.deny, ...(own?.deny ?? [])];
  return { method, allow: blockList(allow), deny: blockList(deny) };
}

/** The ranges as one list; undefined for none. */
function blockList(ranges: readonly string[]): CidrList | undefined {
  return ranges.length === 0 ? undefined : createCidrList(ranges, "IP rules");
}
