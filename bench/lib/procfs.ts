/**
 * Linux /proc readers for a child's memory and CPU. The benchmark measures
 * servers from the outside so it needs nothing from the process under test.
 */
import { readFileSync } from 'node:fs';

/** Clock ticks per second for /proc/<pid>/stat times; 100 on every mainstream Linux (getconf CLK_TCK). */
const CLK_TCK = 100;

/** A `VmXxx:  1234 kB` field of /proc/<pid>/status in kB, or undefined once the process is gone. */
export function readStatusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** User + system CPU time the process has used so far, in seconds. */
export function readCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces; fields after ") " are positional.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 overall, i.e. 11 and 12 after the name.
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/**
 * Samples VmRSS periodically. VmHWM (the kernel's own peak) is the authoritative
 * peak; the samples are a fallback and show the level the process settles at.
 */
export class RssSampler {
  peakKb = 0;
  lastKb = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pid: number,
    everyMs = 250,
  ) {
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
    this.sample();
  }

  sample(): void {
    const kb = readStatusKb(this.pid, 'VmRSS');
    if (kb === undefined) return;
    this.lastKb = kb;
    this.peakKb = Math.max(this.peakKb, kb);
  }

  /** Peak resident set in MB: VmHWM if still readable, else the sampled peak. */
  peakMb(): number {
    this.sample();
    const hwm = readStatusKb(this.pid, 'VmHWM');
    return Math.max(hwm ?? 0, this.peakKb) / 1024;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
