import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues, type Interceptor } from "@connectrpc/connect";
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
  /**
   * The same check for a request gate (`requestGate` of @keel/engine): a refused call is refused
   * on its headers, before its token is checked or its body read; it then still passes the
   * interceptors, where `interceptor` refuses and audits it.
   */
  gate(call: { method: DescMethod; values: ContextValues }): void;
  /** Applies new rules to the next call of every method (a configuration reload). */
  update(rules: IpRules): void;
}

/** One set of lists, shared by the methods it applies to; undefined when it lets everyone through. */
interface Lists {
  allow: CidrList | undefined;
  deny: CidrList | undefined;
  /** The answers for addresses seen lately: a connection's calls come from one address. */
  answers: Map<string, boolean>;
}

/** What one method lets through. */
interface Verdict {
  method: string;
  lists: Lists | undefined;
}

/** Addresses whose answer each set of lists remembers; past it, it starts over. */
const maxRemembered = 10_000;

/**
 * Refuses calls from client addresses outside the allow list or inside the deny list with
 * PERMISSION_DENIED, before any other work (no token is verified, no body read). The address is
 * `peerKey`: the socket's, or behind trusted proxies the client they name. An IPv4 range also
 * matches the IPv4-mapped IPv6 form of its addresses (`::ffff:10.0.0.7`). A client whose address
 * is not an IP address (a proxy's obfuscated `_name`, an unknown peer) is in no range: refused
 * where an allow list applies, let through otherwise. Each method's lists are compiled once, on
 * its first call, and remember the answer for the last 10000 addresses: a call from an address
 * seen before costs a map lookup, a new one a range lookup or two. Place it right after the
 * request id.
 *
 * @throws Error naming the first entry that is not an address or CIDR range.
 */
export function createIpAccess(options: IpAccessOptions): IpAccess {
  const audit = options.audit;
  let verdictFor = verdictsOf(options.rules);

  /** Why a call of `method` from `peer` is refused, or undefined when it is not. */
  const refusal = (method: DescMethod, peer: string): ConnectError | undefined => {
    const verdict = verdictFor(method);
    const lists = verdict.lists;
    if (lists === undefined) return undefined;
    let allowed = lists.answers.get(peer);
    if (allowed === undefined) {
      allowed =
        lists.deny?.has(peer) !== true && (lists.allow === undefined || lists.allow.has(peer));
      if (lists.answers.size >= maxRemembered) lists.answers.clear();
      lists.answers.set(peer, allowed);
    }
    if (allowed) return undefined;
    return new ConnectError(
      `calls to ${verdict.method} are not accepted from this address (${peer || "unknown"})`,
      Code.PermissionDenied,
    );
  };

  const interceptor: Interceptor = (next) => (req) => {
    const peer = req.contextValues.get(peerKey);
    const error = refusal(req.method, peer);
    if (error === undefined) return next(req);
    audit?.write({
      time: new Date().toISOString(),
      method: `${req.method.parent.typeName}/${req.method.name}`,
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
    gate({ method, values }) {
      const error = refusal(method, values.get(peerKey));
      if (error !== undefined) throw error;
    },
    update(rules) {
      verdictFor = verdictsOf(rules);
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

/** Each method's verdict, worked out on its first call; methods with the same lists share them. */
function verdictsOf(rules: IpRules): (desc: DescMethod) => Verdict {
  const compiled = compile(rules);
  const shared = new Map<string, Lists | undefined>();
  return perMethod((desc) => {
    const method = `${desc.parent.typeName}/${desc.name}`;
    const own = compiled.methods[method];
    const allow = own?.allow !== undefined && own.allow.length > 0 ? own.allow : compiled.allow;
    const deny = [...compiled.deny, ...(own?.deny ?? [])];
    const key = JSON.stringify([allow, deny]);
    if (!shared.has(key)) {
      shared.set(
        key,
        allow.length === 0 && deny.length === 0
          ? undefined
          : { allow: blockList(allow), deny: blockList(deny), answers: new Map() },
      );
    }
    return { method, lists: shared.get(key) };
  });
}

/** The ranges as one list; undefined for none. */
function blockList(ranges: readonly string[]): CidrList | undefined {
  return ranges.length === 0 ? undefined : createCidrList(ranges, "IP rules");
}
