import { readFileSync } from 'node:fs';

/** One gRPC message as it goes on the wire: not compressed, a 4-byte length, the bytes. */
export function grpcFrame(body: Uint8Array): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(body.length, 1);
  return Buffer.concat([header, body]);
}

/** A memory line of /proc/<pid>/status in MiB: VmRSS (resident now) or VmHWM (the peak so far). */
export function procStatusMiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]) / 1024;
}
