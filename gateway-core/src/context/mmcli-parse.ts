// Parsers of `mmcli --output-json` outputs. mmcli builds its JSON from dotted keys
// ("modem.signal.lte.rsrp" -> {"modem":{"signal":{"lte":{"rsrp":...}}}}), every value is a
// string ("-97.00", "26201"), an unknown value is the string "--", and multi-valued fields are
// arrays of strings ("modem.generic.ports": ["cdc-wdm0 (qmi)", "wwan0 (net)"]). Each parser
// returns the fields it found or throws MmcliFormatError naming what was wrong, so the source can
// log one clear line instead of crashing on a firmware that prints something unexpected.

export class MmcliFormatError extends Error {}

type Json = Record<string, unknown>;

function parseObject(text: string, what: string): Json {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new MmcliFormatError(`${what}: not JSON (${(e as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new MmcliFormatError(`${what}: expected a JSON object, got ${Array.isArray(v) ? 'an array' : typeof v}`);
  return v as Json;
}

function at(obj: Json, path: string): unknown {
  let o: unknown = obj;
  for (const k of path.split('.')) {
    if (typeof o !== 'object' || o === null) return undefined;
    o = (o as Json)[k];
  }
  return o;
}

/** A single-valued field: undefined when absent, "--" (mmcli's unknown) or empty. */
function str(obj: Json, path: string): string | undefined {
  const v = at(obj, path);
  if (typeof v !== 'string') return undefined;
  const s = v.trim();
  return s === '' || s === '--' ? undefined : s;
}

function strings(obj: Json, path: string): string[] {
  const v = at(obj, path);
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/** mmcli prints measurements with "%.2lf"; anything else (units, "--") is unknown. */
function num(obj: Json, path: string): number | undefined {
  const s = str(obj, path);
  if (s === undefined || !/^-?\d+(\.\d+)?$/.test(s)) return undefined;
  return Number(s);
}

/** `mmcli -L --output-json`: {"modem-list": ["/org/freedesktop/ModemManager1/Modem/0", ...]} -> ["0"]. */
export function parseModemList(text: string): string[] {
  const o = parseObject(text, 'mmcli -L');
  const list = o['modem-list'];
  if (!Array.isArray(list)) throw new MmcliFormatError('mmcli -L: no "modem-list" array');
  const ids: string[] = [];
  for (const p of list) {
    const m = typeof p === 'string' ? /\/Modem\/(\d+)$/.exec(p) : null;
    if (!m) throw new MmcliFormatError(`mmcli -L: expected a modem object path ending in /Modem/N, got ${JSON.stringify(p)}`);
    ids.push(m[1]!);
  }
  return ids;
}

/** ModemManager access technology names (MMModemAccessTechnology) to CARRIER_TECHNOLOGIES. */
const TECHNOLOGY: Record<string, string> = {
  '5gnr': 'nr',
  lte: 'lte', 'lte-cat-m': 'lte', 'lte-nb-iot': 'lte',
  umts: 'umts', hsdpa: 'umts', hsupa: 'umts', hspa: 'umts', 'hspa-plus': 'umts',
};
/** Best first: a modem in 5G NSA reports ["lte", "5gnr"]; it is on NR. */
const TECH_RANK = ['nr', 'lte', 'umts', 'other'];

export function technologyOf(accessTechnologies: string[]): string | undefined {
  let best: string | undefined;
  for (const a of accessTechnologies) {
    if (a === 'unknown' || a === '--') continue;
    const t = TECHNOLOGY[a] ?? 'other';
    if (best === undefined || TECH_RANK.indexOf(t) < TECH_RANK.indexOf(best)) best = t;
  }
  return best;
}

export interface ModemInfo {
  /** Network interfaces of the modem ("wwan0" from "wwan0 (net)"). */
  netPorts: string[];
  operatorName?: string;
  mcc?: string;
  mnc?: string;
  technology?: string;
  state?: string;
}

/** `mmcli -m N --output-json`. */
export function parseModem(text: string, id: string): ModemInfo {
  const o = parseObject(text, `mmcli -m ${id}`);
  if (typeof o.modem !== 'object' || o.modem === null) throw new MmcliFormatError(`mmcli -m ${id}: no "modem" object`);
  const netPorts = strings(o, 'modem.generic.ports').flatMap((p) => {
    const m = /^(\S+) \(net\)$/.exec(p.trim());
    return m ? [m[1]!] : [];
  });
  const info: ModemInfo = { netPorts };
  const name = str(o, 'modem.3gpp.operator-name');
  if (name !== undefined) info.operatorName = name;
  // The operator code is MCC (3 digits) + MNC (2 or 3): "26201", "310410".
  const code = str(o, 'modem.3gpp.operator-code');
  if (code !== undefined && /^\d{5,6}$/.test(code)) {
    info.mcc = code.slice(0, 3);
    info.mnc = code.slice(3);
  }
  const tech = technologyOf(strings(o, 'modem.generic.access-technologies'));
  if (tech !== undefined) info.technology = tech;
  const state = str(o, 'modem.generic.state');
  if (state !== undefined) info.state = state;
  return info;
}

export interface SignalInfo {
  rsrpDbm?: number;
  rsrqDb?: number;
  sinrDb?: number;
}

/**
 * `mmcli -m N --signal-get --output-json`. NR values when the modem has them and is on NR, LTE
 * values otherwise (in 5G NSA the LTE anchor is measured too; the NR leg carries the data).
 */
export function parseSignal(text: string, id: string, technology?: string): SignalInfo {
  const o = parseObject(text, `mmcli -m ${id} --signal-get`);
  if (typeof at(o, 'modem.signal') !== 'object') throw new MmcliFormatError(`mmcli -m ${id} --signal-get: no "modem.signal" object`);
  const pick = (family: string): SignalInfo => {
    const s: SignalInfo = {};
    const rsrp = num(o, `modem.signal.${family}.rsrp`);
    const rsrq = num(o, `modem.signal.${family}.rsrq`);
    const snr = num(o, `modem.signal.${family}.snr`);
    if (rsrp !== undefined) s.rsrpDbm = rsrp;
    if (rsrq !== undefined) s.rsrqDb = rsrq;
    if (snr !== undefined) s.sinrDb = snr;
    return s;
  };
  const nr = pick('5g');
  const lte = pick('lte');
  if (technology === 'nr' && nr.rsrpDbm !== undefined) return nr;
  if (lte.rsrpDbm !== undefined || lte.rsrqDb !== undefined || lte.sinrDb !== undefined) return lte;
  return nr;
}

/** `mmcli -m N --location-get --output-json`: the serving cell id (hex, as mmcli prints it). */
export function parseLocationCellId(text: string, id: string): string | undefined {
  const o = parseObject(text, `mmcli -m ${id} --location-get`);
  if (typeof at(o, 'modem.location') !== 'object') throw new MmcliFormatError(`mmcli -m ${id} --location-get: no "modem.location" object`);
  const cid = str(o, 'modem.location.3gpp.cid');
  // A modem without a 3GPP fix prints 0 ("00000000"): no cell, not cell 0.
  return cid !== undefined && /^[0-9A-Fa-f]+$/.test(cid) && /[1-9A-Fa-f]/.test(cid) ? cid : undefined;
}
