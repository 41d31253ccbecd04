// Synthetic carrier models: a fresh clone has no recorded traces, so the demo, the tests and the
// bench generate their own, seeded and reproducible. Each direction's capacity is
//
//   mean x exp(X(t)) x fade(t) x up(t)
//
// where X is a mean-reverting random walk (Ornstein-Uhlenbeck) of the log-rate (slow variation
// as the signal and the cell load change), fade is a two-state Gilbert-Elliott chain (good /
// faded, exponential sojourns: shadowing, blockage, tunnels), and up is 0 during handover
// outages or scheduled reconfigurations (common to both directions: it is the same radio). The
// rate series is then rescaled so that the trace's mean is exactly the model's mean, clipped
// to the model's range, and turned into a Mahimahi opportunity list (1500 bytes each).
// docs/emulator.md lists the parameters and where the figures come from.
import { mulberry32 } from './link.js';
import type { CarrierEmulation, DirectionSpec } from './spec.js';

interface DirectionModel {
  /** Long-run mean capacity, Mbit/s (outages and fades included). */
  meanMbps: number;
  minMbps: number;
  maxMbps: number;
  /** Log-rate random walk: stationary standard deviation and time constant. */
  sigma: number;
  tauS: number;
  /** Gilbert-Elliott fades: mean seconds in good and faded state, rate factor when faded. */
  fade?: { meanGoodS: number; meanBadS: number; depth: number };
}

interface CarrierModel {
  description: string;
  /** One-way propagation delay per direction, ms. */
  delayMs: number;
  /** Drop-tail queue, in ms of the mean rate (cellular base stations buffer deeply). */
  queueMs: number;
  up: DirectionModel;
  down: DirectionModel;
  /** Random handovers: an interval drawn uniformly in [minS, maxS], an outage in [minMs, maxMs]. */
  handovers?: { minS: number; maxS: number; minMs: number; maxMs: number };
  /** Periodic reconfigurations (LEO satellite scheduling): every everyS, an outage in [minMs, maxMs]. */
  reconfig?: { everyS: number; minMs: number; maxMs: number };
  /** Radio KPIs for the S2-5 context (see modelRadio); speed of the vehicle the model describes. */
  radio: RadioModel;
  speedKmh?: number;
}

/**
 * What a modem on this carrier would report. SINR follows the down direction's log-rate (a
 * capacity at the mean gives sinrDb[1]), RSRP moves with it at half the slope, RSRQ spans its
 * usual -19.5..-3 dB with SINR; a handover or reconfiguration outage changes the serving cell.
 */
interface RadioModel {
  technology: 'lte' | 'nr' | 'satellite';
  /** RSRP at the mean rate, dBm. */
  rsrpDbm: number;
  /** SINR: [worst, at the mean rate, best], dB. */
  sinrDb: [number, number, number];
}

const MODELS: Record<string, CarrierModel> = {
  'lte-urban': {
    description: 'LTE, city, walking or slow driving: moderate variation, short fades, rare handovers',
    radio: { technology: 'lte', rsrpDbm: -92, sinrDb: [-5, 13, 28] }, speedKmh: 30,
    delayMs: 25, queueMs: 250,
    down: { meanMbps: 20, minMbps: 1, maxMbps: 60, sigma: 0.35, tauS: 5, fade: { meanGoodS: 20, meanBadS: 2, depth: 0.3 } },
    up: { meanMbps: 6, minMbps: 0.5, maxMbps: 20, sigma: 0.35, tauS: 5, fade: { meanGoodS: 20, meanBadS: 2, depth: 0.3 } },
    handovers: { minS: 40, maxS: 90, minMs: 30, maxMs: 60 },
  },
  'lte-highway': {
    description: 'LTE at ~120 km/h: strong variation, deeper fades, a handover every 30-60 s',
    radio: { technology: 'lte', rsrpDbm: -98, sinrDb: [-8, 9, 25] }, speedKmh: 120,
    delayMs: 35, queueMs: 300,
    down: { meanMbps: 12, minMbps: 0.3, maxMbps: 45, sigma: 0.6, tauS: 3, fade: { meanGoodS: 8, meanBadS: 1.5, depth: 0.15 } },
    up: { meanMbps: 4, minMbps: 0.1, maxMbps: 15, sigma: 0.6, tauS: 3, fade: { meanGoodS: 8, meanBadS: 1.5, depth: 0.15 } },
    handovers: { minS: 30, maxS: 60, minMs: 40, maxMs: 100 },
  },
  'hsr-350': {
    description: 'LTE on high-speed rail at 350 km/h: cells of 1-2 km, a handover every 10-20 s with a 50-300 ms outage',
    radio: { technology: 'lte', rsrpDbm: -101, sinrDb: [-10, 6, 22] }, speedKmh: 350,
    delayMs: 40, queueMs: 300,
    down: { meanMbps: 8, minMbps: 0.2, maxMbps: 30, sigma: 0.8, tauS: 2, fade: { meanGoodS: 5, meanBadS: 1, depth: 0.1 } },
    up: { meanMbps: 3, minMbps: 0.1, maxMbps: 10, sigma: 0.8, tauS: 2, fade: { meanGoodS: 5, meanBadS: 1, depth: 0.1 } },
    handovers: { minS: 10, maxS: 20, minMs: 50, maxMs: 300 },
  },
  '5g-nr': {
    description: '5G NR mid-band (n78): high rate, low delay, blockage fades, occasional handovers',
    radio: { technology: 'nr', rsrpDbm: -88, sinrDb: [-5, 18, 32] }, speedKmh: 50,
    delayMs: 12, queueMs: 100,
    down: { meanMbps: 150, minMbps: 10, maxMbps: 400, sigma: 0.4, tauS: 4, fade: { meanGoodS: 15, meanBadS: 1, depth: 0.2 } },
    up: { meanMbps: 30, minMbps: 2, maxMbps: 80, sigma: 0.4, tauS: 4, fade: { meanGoodS: 15, meanBadS: 1, depth: 0.2 } },
    handovers: { minS: 40, maxS: 80, minMs: 20, maxMs: 40 },
  },
  'satellite-leo': {
    description: 'LEO satellite (Starlink-like): 100-200 Mbit/s down, 10-20 up, 25-40 ms one-way, a reconfiguration blip every 15 s',
    radio: { technology: 'satellite', rsrpDbm: -110, sinrDb: [0, 10, 15] },
    delayMs: 32, queueMs: 150,
    down: { meanMbps: 150, minMbps: 100, maxMbps: 200, sigma: 0.15, tauS: 10, fade: { meanGoodS: 60, meanBadS: 2, depth: 0.5 } },
    up: { meanMbps: 15, minMbps: 10, maxMbps: 20, sigma: 0.15, tauS: 10, fade: { meanGoodS: 60, meanBadS: 2, depth: 0.5 } },
    reconfig: { everyS: 15, minMs: 30, maxMs: 100 },
  },
};

export const MODEL_NAMES: readonly string[] = Object.freeze(Object.keys(MODELS));

/** One line per model for help texts and docs. */
export function describeModel(name: string): string {
  return modelOf(name).description;
}

function modelOf(name: string): CarrierModel {
  const m = MODELS[name];
  if (!m) throw new Error(`unknown carrier model "${name}" (known: ${MODEL_NAMES.join(', ')})`);
  return m;
}

export interface ModelOptions {
  /** Multiplies every rate of the model (e.g. 0.12 turns 150 Mbit/s 5G into 18 Mbit/s for the demo). */
  rateScale?: number;
}

const STEP_MS = 10;

/** FNV-1a of a string: a stable per-model salt for the seed. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Outage windows [startMs, endMs) over the duration, common to both directions. */
function outageWindows(m: CarrierModel, rand: () => number, durationMs: number): [number, number][] {
  const out: [number, number][] = [];
  const h = m.handovers;
  if (h) {
    for (let t = (h.minS + rand() * (h.maxS - h.minS)) * 1000; t < durationMs; t += (h.minS + rand() * (h.maxS - h.minS)) * 1000) {
      out.push([t, t + h.minMs + rand() * (h.maxMs - h.minMs)]);
    }
  }
  const r = m.reconfig;
  if (r) {
    // Aligned to a global schedule, not to our start: a random phase within one period.
    for (let t = rand() * r.everyS * 1000; t < durationMs; t += r.everyS * 1000) {
      out.push([t, t + r.minMs + rand() * (r.maxMs - r.minMs)]);
    }
  }
  return out.sort((a, b) => a[0] - b[0]);
}

/** Capacity per 10 ms step, Mbit/s, with the model's mean. */
function rateSeries(d: DirectionModel, rand: () => number, durationMs: number, outages: [number, number][], scale: number): Float64Array {
  const steps = Math.ceil(durationMs / STEP_MS);
  const r = new Float64Array(steps);
  const dt = STEP_MS / 1000;
  const a = Math.exp(-dt / d.tauS);
  const noise = d.sigma * Math.sqrt(1 - a * a);
  const gauss = (): number => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  let x = d.sigma * gauss();
  let faded = false;
  let stateLeftS = d.fade ? -Math.log(1 - rand()) * d.fade.meanGoodS : Infinity;
  let o = 0;
  for (let k = 0; k < steps; k++) {
    x = a * x + noise * gauss();
    if (d.fade) {
      stateLeftS -= dt;
      if (stateLeftS <= 0) {
        faded = !faded;
        stateLeftS = -Math.log(1 - rand()) * (faded ? d.fade.meanBadS : d.fade.meanGoodS);
      }
    }
    const t = k * STEP_MS;
    while (o < outages.length && outages[o]![1] <= t) o++;
    const down = o < outages.length && outages[o]![0] <= t;
    r[k] = down ? 0 : Math.exp(x) * (faded ? d.fade!.depth : 1);
  }
  // Rescale to the mean, clip to the range (outages stay 0), then rescale once more for the
  // clipping: close to the mean without iterating.
  for (let pass = 0; pass < 2; pass++) {
    let sum = 0;
    for (let k = 0; k < steps; k++) sum += r[k]!;
    const f = sum > 0 ? (d.meanMbps * steps) / sum : 0;
    for (let k = 0; k < steps; k++) {
      if (r[k] === 0) continue;
      r[k] = Math.min(d.maxMbps, Math.max(d.minMbps, r[k]! * f));
    }
  }
  if (scale !== 1) for (let k = 0; k < steps; k++) r[k]! *= scale;
  return r;
}

/** Opportunity times (ms) for a rate series: 1500-byte credit accumulates every millisecond. */
function toTrace(rates: Float64Array, durationMs: number): number[] {
  const out: number[] = [];
  let credit = 0;
  for (let ms = 1; ms <= durationMs; ms++) {
    credit += rates[Math.floor((ms - 1) / STEP_MS)]! / 12; // 12 Mbit/s = one opportunity per ms
    while (credit >= 1) {
      out.push(ms);
      credit -= 1;
    }
  }
  // The last time is the loop period: keep it at the full duration.
  if (out.length === 0 || out[out.length - 1]! < durationMs) out.push(durationMs);
  return out;
}

/**
 * A carrier following the model `name`, generated in memory for durationS (default 120 s; the
 * traces loop after that). Same name, seed and duration: the same traces.
 */
export function modelCarrier(name: string, seed: number, durationS = 120, opts: ModelOptions = {}): CarrierEmulation {
  const m = modelOf(name);
  if (!Number.isInteger(seed)) throw new Error(`modelCarrier(${name}): seed must be an integer, got ${seed}`);
  if (!(durationS >= 1) || !Number.isFinite(durationS)) throw new Error(`modelCarrier(${name}): durationS must be >= 1, got ${durationS}`);
  const scale = opts.rateScale ?? 1;
  if (!(scale > 0)) throw new Error(`modelCarrier(${name}): rateScale must be > 0, got ${scale}`);
  const durationMs = Math.round(durationS * 1000);
  const base = seedBase(name, seed);
  const outages = outageWindows(m, mulberry32(base), durationMs);
  const dir = (d: DirectionModel, salt: number): DirectionSpec => {
    const rates = rateSeries(d, mulberry32((base + salt) >>> 0), durationMs, outages, scale);
    return {
      trace: toTrace(rates, durationMs),
      delayMs: m.delayMs,
      queueBytes: Math.max(64 * 1500, Math.round((d.meanMbps * scale * 1e6 / 8) * (m.queueMs / 1000))),
      seed: (base + salt) | 0,
    };
  };
  return { up: dir(m.up, 1), down: dir(m.down, 2) };
}

/** The outage windows [startMs, endMs) the model puts in both directions' traces (for tests and plots). */
export function modelOutages(name: string, seed: number, durationS = 120): [number, number][] {
  const m = modelOf(name);
  return outageWindows(m, mulberry32(seedBase(name, seed)), Math.round(durationS * 1000));
}

function seedBase(name: string, seed: number): number {
  return (hash(name) ^ Math.imul(seed, 0x9e3779b1)) >>> 0;
}

export interface RadioSample {
  /** Time from the start of the model's traces, ms. */
  atMs: number;
  rsrpDbm: number;
  rsrqDb: number;
  sinrDb: number;
  /** Serving cell (hex); changes at each handover or reconfiguration outage. */
  cellId: string;
  /** In an outage (handover in progress): SINR at its worst. */
  outage: boolean;
}

export interface RadioTrack {
  technology: string;
  stepMs: number;
  samples: RadioSample[];
}

const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

/**
 * Radio KPIs along the model's traces (same name, seed and duration: the same values as the
 * down direction's capacity of modelCarrier), one sample per stepMs, averaged over the step.
 */
export function modelRadio(name: string, seed: number, durationS = 120, stepMs = 500): RadioTrack {
  const m = modelOf(name);
  if (!(stepMs >= STEP_MS) || stepMs % STEP_MS !== 0) throw new Error(`modelRadio(${name}): stepMs must be a multiple of ${STEP_MS}, got ${stepMs}`);
  const durationMs = Math.round(durationS * 1000);
  const base = seedBase(name, seed);
  const outages = outageWindows(m, mulberry32(base), durationMs);
  // The down direction's series exactly as modelCarrier draws it (salt 2, scale 1).
  const rates = rateSeries(m.down, mulberry32((base + 2) >>> 0), durationMs, outages, 1);
  const [worst, mid, best] = m.radio.sinrDb;
  const per = stepMs / STEP_MS;
  const samples: RadioSample[] = [];
  let cell = (base % 0x0fffff) * 16 + 1;
  let o = 0;
  for (let k = 0; k * per < rates.length; k++) {
    let sum = 0;
    let n = 0;
    for (let j = k * per; j < Math.min(rates.length, (k + 1) * per); j++, n++) sum += rates[j]!;
    const rate = sum / n;
    const t = k * stepMs;
    let outage = false;
    while (o < outages.length && outages[o]![1] <= t) {
      o++;
      cell += 1 + (o % 3); // a handover: the next cell along the line
    }
    if (o < outages.length && outages[o]![0] < t + stepMs) outage = true;
    const rel = rate > 0 ? Math.log(rate / m.down.meanMbps) : -Infinity;
    const sinr = outage ? worst : clamp(mid + (rel >= 0 ? rel * (best - mid) / 1.5 : rel * (mid - worst) / 2.5), worst, best);
    samples.push({
      atMs: t,
      sinrDb: Math.round(sinr * 10) / 10,
      rsrpDbm: Math.round(clamp(m.radio.rsrpDbm + (sinr - mid) / 2, -140, -44) * 10) / 10,
      rsrqDb: Math.round(clamp(-19.5 + 16.5 * (sinr - worst) / (best - worst), -19.5, -3) * 10) / 10,
      cellId: cell.toString(16).toUpperCase().padStart(8, '0'),
      outage,
    });
  }
  return { technology: m.radio.technology, stepMs, samples };
}

/** The vehicle speed a model describes (km/h), if it describes one. */
export function modelSpeedKmh(name: string): number | undefined {
  return modelOf(name).speedKmh;
}

/** Nominal figures of a model (for tables and docs). */
export function modelSummary(name: string): { downMbps: number; upMbps: number; delayMs: number; description: string } {
  const m = modelOf(name);
  return { downMbps: m.down.meanMbps, upMbps: m.up.meanMbps, delayMs: m.delayMs, description: m.description };
}
