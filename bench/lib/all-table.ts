// The bench:all results as Markdown (bench/README.md, between its markers). A figure that does
// not apply is "–"; a system that failed says so with the first words of its error.
import type { BenchResult, SystemDetails, SystemResult } from './bench-result.js';

export interface ScenarioOutcome {
  name: string;
  result?: BenchResult;
  seconds?: number;
  skipped?: string;
  error?: string;
}

export interface RunInfo {
  date: string;
  totalS: number;
  command: string;
  machine: string;
  resultsDir: string;
}

function num(x: number | null, digits = 1): string {
  return x === null ? '–' : x.toFixed(digits);
}

function pair(x: { p50: number; p99: number } | null): string {
  return x === null ? '–' : `${Math.round(x.p50)} / ${Math.round(x.p99)}`;
}

function firstLine(s: string): string {
  return (s.split('\n')[0] ?? '').replace(/\|/g, '/').slice(0, 90);
}

function row(scenario: string, system: string, r: SystemResult, d: SystemDetails | undefined): string {
  return `| ${scenario} | ${system} | ${num(r.goodputMbps)} | ${num(r.capacityMbps)} | ${num(r.efficiency, 2)} | ${num(r.maxGapMs, 0)} | ${pair(r.latencyMs)} | ${r.lostMessages ?? '–'} | ${pair(r.reorderDelayMs)} | ${pair(d?.delaySpreadMs ?? null)} | ${num(r.overheadPct)} | ${num(r.cpuPct, 0)} | ${num(r.rssMb, 0)} |`;
}

export function renderAllTable(outcomes: readonly ScenarioOutcome[], run: RunInfo): string {
  const out: string[] = [];
  out.push(`Recorded run: ${run.date.slice(0, 16).replace('T', ' ')} UTC, \`${run.command}\` as root, ${Math.round(run.totalS / 60)} min in total; results in \`${run.resultsDir}/\`.`);
  out.push(`Machine: ${run.machine}. **Shared machine:** other work ran on the same 2 cores during this run, and all hosts, both gateways, the link emulators and the traffic share them: treat every figure as one noisy sample, not a property of the systems.`);
  out.push('');
  out.push('| Scenario | System | Goodput Mbit/s | Capacity Mbit/s | Efficiency | Max gap ms | Latency p50 / p99 ms | Lost msgs | Reorder delay p50 / p99 ms | Path delay spread p50 / p99 ms | Overhead % | Gateway CPU % | Gateway RSS MiB |');
  out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  const notes: string[] = [];
  for (const o of outcomes) {
    if (o.skipped) {
      out.push(`| ${o.name} | skipped: ${o.skipped} | | | | | | | | | | | |`);
      continue;
    }
    if (o.error || !o.result) {
      out.push(`| ${o.name} | failed: ${firstLine(o.error ?? 'no result')} | | | | | | | | | | | |`);
      continue;
    }
    const r = o.result;
    let first = true;
    for (const [system, figures] of Object.entries(r.systems)) {
      if (!figures) continue;
      const d = r.details[system as keyof typeof r.details];
      const label = first ? `${o.name} (${r.durationS} s)` : '';
      first = false;
      if (d?.errors.length) {
        out.push(`| ${label} | ${system}: failed (${firstLine(d.errors[0]!)}) | | | | | | | | | | | |`);
        continue;
      }
      out.push(row(label, system, figures, d));
      for (const st of d?.stepResponse ?? []) {
        notes.push(`${o.name} / ${system}: capacity step at ${st.atS} s, ${st.fromMbps} -> ${st.toMbps} Mbit/s: 90 % of the new capacity after ${st.reach90CapacityMs === null ? 'never (before the next step)' : `${st.reach90CapacityMs} ms`}; settled at ${st.settledMbps} Mbit/s${st.reach90SettledMs === null ? '' : `, 90 % of that after ${st.reach90SettledMs} ms`}`);
      }
      for (const n of d?.notes ?? []) {
        if (n.startsWith('set-up ended')) notes.push(`${o.name} / ${system}: ${n}`);
      }
    }
  }
  out.push('');
  out.push('How to read it: capacity is what the emulated carriers could have delivered during the run, summed over ALL the scenario\'s carriers in the traffic\'s direction, for every system alike (so a one-carrier system cannot exceed that carrier\'s share); efficiency = goodput / capacity. Single-carrier systems (best-single, single-path-braid, openvpn) use the carrier with the highest mean capacity. Gateway CPU is % of one core for edge + cloud together (Braid or OpenVPN processes; kernel MPTCP and plain routing have none). Reorder delay (Braid only): how long packets waited in the gateways\' reorder buffers, each percentile given as the upper bound of its histogram bucket (an upper estimate). Path delay spread (Braid only, from the result\'s details): the difference between the largest and the smallest one-way delay among the paths in use, measured by the receiving gateway for each arriving data packet, same buckets; issue 4 wants reorder p99 <= spread p99 + 5 ms (each result\'s notes say met or not). rr latency is over TCP (head-of-line blocking included); a lost message had no answer by the end of the run plus 2 s.');
  if (notes.length) {
    out.push('');
    for (const n of notes) out.push(`- ${n}`);
  }
  return out.join('\n');
}
