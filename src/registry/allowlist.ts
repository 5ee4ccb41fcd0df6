import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { RegistryError } from './plugin-spec.js';
import { polkuError } from '../errors.js';

/**
 * Where the gateway may dial plugins unless POLKU_REGISTRY_ALLOWLIST says otherwise: loopback and
 * the private ranges a cluster's pods and Services live in. Not included: link-local
 * (169.254/16 holds cloud metadata endpoints), the unspecified address, and public addresses.
 * The node's own IP is not added either: it is usually inside these ranges already, and where it
 * is public, `$(HOST_IP)/32` can be listed explicitly.
 */
export const DEFAULT_ALLOWLIST = ['127.0.0.0/8', '::1/128', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'] as const;

/** Resolves a host name to its addresses (injectable for tests). */
export type Resolver = (hostname: string) => Promise<string[]>;

const HOSTNAME = /^(?:\*\.)?[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?$/;

/** System resolution, IPv4 first (what the gateway then dials). */
export const systemResolver: Resolver = async (hostname) =>
  (await lookup(hostname, { all: true, order: 'ipv4first' })).map((a) => a.address);

/** The entries of an allowlist that are not CIDRs, addresses or host names; empty when all are fine. */
export function allowlistProblems(entries: readonly string[]): string[] {
  return entries.filter((e) => parseEntry(e) === undefined);
}

type Entry = { kind: 'net'; address: string; prefix: number; family: 'ipv4' | 'ipv6' } | { kind: 'name'; name: string; suffix: boolean };

function parseEntry(raw: string): Entry | undefined {
  const entry = raw.trim();
  const slash = entry.indexOf('/');
  if (slash >= 0) {
    const address = entry.slice(0, slash);
    const bits = entry.slice(slash + 1);
    const v = isIP(address);
    if (v === 0 || !/^\d{1,3}$/.test(bits) || Number(bits) > (v === 4 ? 32 : 128)) return undefined;
    return { kind: 'net', address, prefix: Number(bits), family: v === 4 ? 'ipv4' : 'ipv6' };
  }
  const v = isIP(entry);
  if (v !== 0) return { kind: 'net', address: entry, prefix: v === 4 ? 32 : 128, family: v === 4 ? 'ipv4' : 'ipv6' };
  if (!HOSTNAME.test(entry) || entry.length > 253) return undefined;
  const lower = entry.toLowerCase().replace(/\.$/, '');
  return lower.startsWith('*.') ? { kind: 'name', name: lower.slice(1), suffix: true } : { kind: 'name', name: lower, suffix: false };
}

/**
 * Which plugin addresses the gateway may dial: CIDRs (`10.0.0.0/8`, `fd00::/8`), single addresses,
 * host names (`audit.plugins.svc`) and name suffixes (`*.plugins.svc.cluster.local`).
 *
 * An IP address must fall inside a listed range. A listed host name is dialled by name. Any other
 * name is resolved first and EVERY address it resolves to must fall inside a listed range; the
 * gateway then dials the first of those addresses, not the name, so a DNS answer that changes
 * between the check and the dial cannot steer it elsewhere. Nothing is dialled for a refusal.
 */
export class AddressAllowlist {
  private readonly nets = new BlockList();
  private readonly names: Array<{ name: string; suffix: boolean }> = [];
  readonly entries: readonly string[];

  constructor(
    entries: readonly string[] = DEFAULT_ALLOWLIST,
    private readonly resolve: Resolver = systemResolver,
  ) {
    this.entries = entries.map((e) => e.trim()).filter((e) => e !== '');
    for (const raw of this.entries) {
      const e = parseEntry(raw);
      if (!e)
        throw polkuError('POLKU_ERR_OPTION_INVALID', `allowlist entry ${JSON.stringify(raw)} is not a CIDR, an IP address or a host name`);
      if (e.kind === 'net') this.nets.addSubnet(e.address, e.prefix, e.family);
      else this.names.push({ name: e.name, suffix: e.suffix });
    }
  }

  /** Whether an IP address (v4, v6 or v4-mapped v6) lies inside a listed range. */
  allowsIp(address: string): boolean {
    const ip = normalizeIp(address);
    const v = isIP(ip);
    return v !== 0 && this.nets.check(ip, v === 4 ? 'ipv4' : 'ipv6');
  }

  /**
   * Checks a grpc-js target (`host:port` or `[v6]:port`) and returns the target to dial. Refuses
   * with PERMISSION_DENIED (address not allowed) or UNAVAILABLE (the name does not resolve).
   */
  async check(target: string, timeoutMs = 2_000): Promise<string> {
    const { host, port } = splitTarget(target);
    const denied = (why: string) =>
      new RegistryError('POLKU_ERR_REGISTRY_ADDRESS_DENIED', `address ${target} is not allowed: ${why} (POLKU_REGISTRY_ALLOWLIST)`);
    if (isIP(normalizeIp(host)) !== 0) {
      if (!this.allowsIp(host)) throw denied(`${host} is outside the allowed ranges`);
      return target;
    }
    const name = host.toLowerCase().replace(/\.$/, '');
    if (this.names.some((n) => (n.suffix ? name.endsWith(n.name) : name === n.name))) return target;
    let addresses: string[];
    try {
      addresses = await withTimeout(this.resolve(name), timeoutMs);
    } catch (err) {
      throw new RegistryError('POLKU_ERR_PLUGIN_UNREACHABLE', `address ${target}: ${name} does not resolve: ${(err as Error).message}`);
    }
    if (addresses.length === 0) throw new RegistryError('POLKU_ERR_PLUGIN_UNREACHABLE', `address ${target}: ${name} resolves to nothing`);
    const outside = addresses.filter((a) => !this.allowsIp(a));
    if (outside.length > 0) throw denied(`${name} resolves to ${outside.join(', ')}, outside the allowed ranges`);
    const first = normalizeIp(addresses[0]!);
    return isIP(first) === 6 ? `[${first}]:${port}` : `${first}:${port}`;
  }
}

/** `host:port` or `[v6]:port` → its parts (host without brackets). */
export function splitTarget(target: string): { host: string; port: string } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(target) ?? /^([^:]+):(\d+)$/.exec(target);
  if (!m) throw new RegistryError('POLKU_ERR_REGISTRY_INVALID', `address ${target} is not host:port`);
  return { host: m[1]!, port: m[2]! };
}

/** Drops an IPv6 zone and unwraps IPv4-mapped IPv6 (`::ffff:10.0.0.1` → `10.0.0.1`). */
function normalizeIp(address: string): string {
  const bare = address.replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  return mapped ? mapped[1]! : bare;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
