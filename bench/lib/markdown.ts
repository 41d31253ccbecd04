// The benchmark's result as Markdown tables (printed to stdout, pasted into bench/README.md).
// A figure that was not measured, or whose measurement failed, is shown as such, never invented.
import type { FoundationResult, Measurement } from './result.js';

function mbit(m: Measurement | undefined): string {
  if (!m) return 'not measured';
  if (m.mbps === undefined) return `failed${m.error ? ` (${m.error.split('\n')[0]?.slice(0, 60)})` : ''}`;
  return m.mbps.toFixed(1);
}

function pct(x: number | undefined): string {
  return x === undefined ? '–' : `${Math.round(x * 100)} %`;
}

function cpu(m: Measurement | undefined): string {
  if (!m?.cpu || Object.keys(m.cpu).length === 0) return '–';
  const parts = Object.entries(m.cpu).map(([k, v]) => `${k} ${Math.round(v.cpuPct)}`);
  return `${parts.join(' + ')} (host ${Math.round(m.hostBusyPct ?? 0)})`;
}

function rss(ms: (Measurement | undefined)[]): string {
  const peak: Record<string, number> = {};
  for (const m of ms) for (const [k, v] of Object.entries(m?.cpu ?? {})) peak[k] = Math.max(peak[k] ?? 0, v.rssMiB);
  const parts = Object.entries(peak).map(([k, v]) => `${k} ${Math.round(v)}`);
  return parts.length ? parts.join(' / ') : '–';
}

function find(list: Measurement[], system: string, direction: string, parallel: number): Measurement | undefined {
  return list.find((m) => m.system === system && m.direction === direction && m.parallel === parallel);
}

export function renderMarkdown(r: FoundationResult): string {
  const out: string[] = [];
  const b = r.bonded;
  out.push(`Braid foundation benchmark, ${r.date.slice(0, 16).replace('T', ' ')} UTC, ${r.durationS} s (${r.host.cpus} × ${r.host.cpuModel}, Linux ${r.host.kernel}, load average at start ${r.host.loadAverageAtStart.join(' ')})`);
  out.push('');
  out.push(`#### 1. Bonded goodput: three carriers, tbf ${b.carriersMbit.join(' + ')} = ${b.capacityMbit} Mbit/s, iperf3 -P ${b.parallel}, ${b.seconds} s measured after -O ${b.omitS}`);
  out.push('');
  out.push(`| System | Download Mbit/s | of ${b.capacityMbit} | Upload Mbit/s | of ${b.capacityMbit} | tunnel CPU %: download / upload |`);
  out.push('|---|---:|---:|---:|---:|---|');
  for (const [system, label] of [['best-single', 'best-single: carrier 0 (20 Mbit/s) alone, no tunnel'], ['braid', `Braid, bonded over ${b.carriersMbit.length} carriers`]] as const) {
    const dl = find(b.results, system, 'download', b.parallel);
    const ul = find(b.results, system, 'upload', b.parallel);
    out.push(`| ${label} | ${mbit(dl)} | ${pct(dl?.fractionOfCapacity)} | ${mbit(ul)} | ${pct(ul?.fractionOfCapacity)} | ${system === 'braid' ? `${cpu(dl)} / ${cpu(ul)}` : '–'} |`);
  }
  for (const dir of ['download', 'upload'] as const) {
    const braid = find(b.results, 'braid', dir, b.parallel);
    const single = find(b.results, 'best-single', dir, b.parallel);
    if (braid?.mbps !== undefined && single?.mbps !== undefined) {
      const split = braid.carrierShares ? `; carrier byte shares ${braid.carrierShares.map((s) => `${Math.round(s * 100)} %`).join(' / ')} (rates ${b.carriersMbit.map((x) => Math.round((100 * x) / b.capacityMbit)).join(' / ')} %)` : '';
      out.push('');
      out.push(`- ${dir}: Braid ${(braid.mbps / single.mbps).toFixed(2)} × best-single${split}`);
    }
  }
  out.push('');
  const s = r.singleCarrier;
  out.push(`#### 2. One carrier, unshaped veth: raw vs OpenVPN vs Braid, iperf3 ${s.seconds} s measured after -O ${s.omitS}`);
  out.push('');
  out.push('| System | Streams | Download Mbit/s | Upload Mbit/s | tunnel CPU % during download | tunnel CPU % during upload | RSS MiB, peak |');
  out.push('|---|---:|---:|---:|---|---|---|');
  const labels: Record<string, string> = { 'raw-veth': 'raw veth, no tunnel (ceiling)', openvpn: 'OpenVPN 2.6, UDP, AES-256-GCM', braid: 'Braid, one carrier' };
  for (const system of ['raw-veth', 'openvpn', 'braid']) {
    if (s.skipped[system]) {
      out.push(`| ${labels[system]} | – | not measured (${s.skipped[system]}) | | | | |`);
      continue;
    }
    for (const p of s.parallel) {
      const dl = find(s.results, system, 'download', p);
      const ul = find(s.results, system, 'upload', p);
      out.push(`| ${labels[system]} | ${p} | ${mbit(dl)} | ${mbit(ul)} | ${cpu(dl)} | ${cpu(ul)} | ${rss([dl, ul])} |`);
    }
  }
  out.push('');
  out.push('Tunnel CPU: utime+stime of each tunnel process group over the iperf3 run, in % of one core (this machine has 2: 200 % is all of it); "host" is the busy share of the whole machine, all processes, in % of both cores.');
  out.push('');
  out.push('Paths:');
  for (const [k, v] of Object.entries(r.paths)) out.push(`- ${k}: ${v}`);
  return out.join('\n');
}
