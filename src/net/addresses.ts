/**
 * Which IP addresses outbound requests may not reach, and why: everything that is not the public
 * internet (loopback, private, link-local — cloud metadata at 169.254.169.254 among them — CGNAT,
 * multicast, reserved), unless an operator allows a range. node:net's BlockList matches IPv4-mapped
 * IPv6 addresses (::ffff:127.0.0.1) against the IPv4 ranges by itself; the NAT64 prefix is added here.
 */
import { BlockList, isIP } from 'node:net';

type Family = 'ipv4' | 'ipv6';

const V4_RANGES: [network: string, prefix: number, what: string][] = [
  ['0.0.0.0', 8, 'an unspecified ("this network") address'],
  ['127.0.0.0', 8, 'a loopback address'],
  ['10.0.0.0', 8, 'a private address'],
  ['172.16.0.0', 12, 'a private address'],
  ['192.168.0.0', 16, 'a private address'],
  ['100.64.0.0', 10, 'a carrier-grade NAT address'],
  ['169.254.0.0', 16, 'a link-local address'],
  ['224.0.0.0', 4, 'a multicast address'],
  ['240.0.0.0', 4, 'a reserved address'],
];
const V6_RANGES: [network: string, prefix: number, what: string][] = [
  ['::', 128, 'an unspecified address'],
  ['::1', 128, 'a loopback address'],
  ['fc00::', 7, 'a private (unique local) address'],
  ['fe80::', 10, 'a link-local address'],
  ['ff00::', 8, 'a multicast address'],
];
/** NAT64 gateways translate 64:ff9b::a.b.c.d to a.b.c.d, so the IPv4 ranges apply there too. */
const NAT64 = '64:ff9b::';

/** One BlockList per reason, so a refusal can say which kind of address it was. */
const FORBIDDEN: [what: string, list: BlockList][] = (() => {
  const lists = new Map<string, BlockList>();
  const add = (what: string, network: string, prefix: number, family: Family) => {
    if (!lists.has(what)) lists.set(what, new BlockList());
    lists.get(what)!.addSubnet(network, prefix, family);
  };
  for (const [network, prefix, what] of V4_RANGES) {
    add(what, network, prefix, 'ipv4');
    add(what, `${NAT64}${network}`, 96 + prefix, 'ipv6');
  }
  for (const [network, prefix, what] of V6_RANGES) add(what, network, prefix, 'ipv6');
  return [...lists];
})();

const familyOf = (address: string): Family => (isIP(address) === 4 ? 'ipv4' : 'ipv6');

/** `10.0.0.0/8`, `::1/128`: an address and a prefix length that fits it. */
export function parseCidr(cidr: string): { network: string; prefix: number; family: Family } | undefined {
  const match = /^([0-9a-fA-F:.]+)\/([0-9]{1,3})$/.exec(cidr);
  const version = match ? isIP(match[1]!) : 0;
  const prefix = Number(match?.[2]);
  if (!match || version === 0 || prefix > (version === 4 ? 32 : 128)) return undefined;
  return { network: match[1]!, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** The operator's allowed ranges (SWITCHYARD_OUTBOUND_ALLOW) as one list. */
export function allowList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const parsed = parseCidr(cidr);
    if (!parsed) throw new Error(`"${cidr}" is not a CIDR range like 10.0.0.0/8 or ::1/128`);
    list.addSubnet(parsed.network, parsed.prefix, parsed.family);
  }
  return list;
}

/** Why `address` may not be reached (`"a loopback address"`), or null when it may. */
export function forbiddenReason(address: string, allowed: BlockList): string | null {
  const family = familyOf(address);
  if (allowed.check(address, family)) return null;
  for (const [what, list] of FORBIDDEN) if (list.check(address, family)) return what;
  return null;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
/** Whether a host name or address (no port) is this machine's loopback. */
export const isLoopback = (host: string) => LOOPBACK.has(host) || host.startsWith('127.');

/** Whether a `host:port` (or `[v6]:port`) address is on loopback. */
export const isLoopbackAddress = (address: string) => isLoopback(address.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1'));
