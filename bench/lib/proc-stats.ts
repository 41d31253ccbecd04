// CPU time and memory of the processes under test, read from /proc. A tunnel process is measured
// as its whole process group (ManagedProcess starts every helper as a group leader), so anything
// it forked is counted with it.
import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

/** Kernel clock ticks per second, the unit of utime/stime in /proc/PID/stat. */
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

const PAGE_BYTES = (() => {
  try {
    return Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim()) || 4096;
  } catch {
    return 4096;
  }
})();

export interface GroupSample {
  /** utime + stime of every live process in the group, in seconds. */
  cpuS: number;
  /** Sum of the group's resident set sizes, in bytes. */
  rssBytes: number;
  processes: number;
}

interface StatFields {
  pgrp: number;
  ticks: number;
  rssPages: number;
}

function readStat(pid: string): StatFields | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // exited between readdir and read
  }
  // The command name (field 2) may contain spaces and parentheses; everything after the last
  // ')' is space-separated, starting at field 3 (state).
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const field = (n: number): number => Number(rest[n - 3]);
  return { pgrp: field(5), ticks: field(14) + field(15), rssPages: field(24) };
}

/** One look at every process whose process group is `pgid`. */
export function sampleGroup(pgid: number): GroupSample {
  const out: GroupSample = { cpuS: 0, rssBytes: 0, processes: 0 };
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStat(name);
    if (!st || st.pgrp !== pgid) continue;
    out.cpuS += st.ticks / CLK_TCK;
    out.rssBytes += st.rssPages * PAGE_BYTES;
    out.processes++;
  }
  return out;
}

/** Busy and total jiffies of the whole machine (all cores), from the first line of /proc/stat. */
export function sampleHost(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((s, x) => s + x, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0); // idle + iowait
  return { busy: total - idle, total };
}

export interface CpuUsage {
  /** CPU time used over the interval, as percent of ONE core (200 = both cores of this machine). */
  cpuPct: number;
  /** Resident memory at the end of the interval, MiB. */
  rssMiB: number;
}

/**
 * Measures named process groups and the host over an interval: call it before the work, then
 * call the returned function after it.
 */
export function startCpuMeter(groups: Record<string, number>): () => { groups: Record<string, CpuUsage>; hostBusyPct: number } {
  const t0 = process.hrtime.bigint();
  const before = Object.fromEntries(Object.entries(groups).map(([k, pgid]) => [k, sampleGroup(pgid)]));
  const host0 = sampleHost();
  return () => {
    const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
    const host1 = sampleHost();
    const out: Record<string, CpuUsage> = {};
    for (const [k, pgid] of Object.entries(groups)) {
      const now = sampleGroup(pgid);
      const then = before[k] ?? now;
      out[k] = {
        cpuPct: round1((100 * (now.cpuS - then.cpuS)) / wallS),
        rssMiB: round1(now.rssBytes / (1024 * 1024)),
      };
    }
    const hostBusyPct = round1((100 * (host1.busy - host0.busy)) / Math.max(1, host1.total - host0.total));
    return { groups: out, hostBusyPct };
  };
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}
