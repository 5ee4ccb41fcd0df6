/**
 * Whether a caller's address is this host's loopback: 127.0.0.0/8, ::1, or 127.x mapped into
 * IPv6. The admin surfaces (HTTP /admin, polku.v1.Admin) change state and answer only these.
 */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  return address === '::1' || /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(address);
}
