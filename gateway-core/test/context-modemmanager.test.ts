// The ModemManager context source against recorded `mmcli --output-json` outputs
// (test/fixtures/mmcli/, in mmcli's own layout; there is no modem on a test machine), and
// against a missing mmcli for real (ENOENT from a command that does not exist).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import type { CommandResult, CommandRunner } from '../src/context/command.js';
import { ModemManagerSource } from '../src/context/modemmanager.js';
import { parseModem, parseSignal, technologyOf } from '../src/context/mmcli-parse.js';

const fixture = (name: string): string => readFileSync(new URL(`fixtures/mmcli/${name}`, import.meta.url), 'utf8');

const CARRIERS = [
  { name: 'lte-a', interface: 'wwan0' },
  { name: 'nr-b', interface: 'wwan1' },
  { name: 'sat-c', interface: 'eth2' },
];

function capture() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (l: string) => { lines.push(JSON.parse(l) as Record<string, unknown>); } });
  return { logger, lines, warnings: () => lines.filter((l) => l.level === 40).map((l) => String(l.msg)) };
}

/** A modem set as mmcli would print it: args -> fixture file (or a result), every call recorded. */
function recorded(files: Record<string, string | CommandResult>) {
  const calls: string[] = [];
  const run: CommandRunner = async (cmd, args) => {
    assert.equal(cmd, 'mmcli');
    const key = args.join(' ');
    calls.push(key);
    if (key.includes('--signal-setup=')) return { code: 0, stdout: 'Successfully setup extended signal information retrieval\n', stderr: '' };
    const f = files[key];
    if (f === undefined) return { code: 1, stdout: '', stderr: `error: unexpected call mmcli ${key}\n` };
    return typeof f === 'string' ? { code: 0, stdout: fixture(f), stderr: '' } : f;
  };
  return { run, calls };
}

const threeModems = (): Record<string, string | CommandResult> => ({
  '-L --output-json': 'list-three.json',
  '-m 0 --output-json': 'modem-0.json',
  '-m 0 --signal-get --output-json': 'signal-0.json',
  '-m 0 --location-get --output-json': 'location-0.json',
  '-m 1 --output-json': 'modem-1.json',
  '-m 1 --signal-get --output-json': 'signal-1.json',
  '-m 1 --location-get --output-json': 'location-1.json',
  '-m 2 --output-json': 'modem-2.json',
  '-m 2 --signal-get --output-json': 'signal-2.json',
  '-m 2 --location-get --output-json': 'location-2.json',
});

describe('ModemManager context source', () => {
  test('maps each modem to the carrier whose interface is its net port, with operator, MCC/MNC, technology, cell and signal', async () => {
    const { logger, warnings } = capture();
    const { run } = recorded(threeModems());
    const src = new ModemManagerSource({ carriers: CARRIERS, logger, run, now: () => 1234 });
    await src.pollNow();
    const radio = src.snapshot().radio ?? [];
    assert.deepEqual(radio, [
      {
        carrier: 'lte-a', operatorName: 'Telekom.de', mcc: '262', mnc: '01', technology: 'lte',
        rsrpDbm: -97, rsrqDb: -11, sinrDb: 12.4, cellId: '01A2D00B', atMs: 1234,
      },
      {
        // 5G NSA: the NR leg's values, not the LTE anchor's.
        carrier: 'nr-b', operatorName: 'Vodafone.de', mcc: '262', mnc: '02', technology: 'nr',
        rsrpDbm: -84, rsrqDb: -11, sinrDb: 21.5, cellId: '0C4F7A02', atMs: 1234,
      },
    ]);
    // Modem 2's interface belongs to no carrier: said once, not an error.
    assert.deepEqual(warnings(), ['modem 2 (net ports: wwx0c5b8f279a64) is no carrier\'s interface: ignored']);
  });

  test('runs the documented commands; signal polling is set up once per modem at the poll period', async () => {
    const { logger } = capture();
    const { run, calls } = recorded(threeModems());
    const src = new ModemManagerSource({ carriers: CARRIERS, logger, run, pollMs: 3000 });
    await src.pollNow();
    await src.pollNow();
    const setups = calls.filter((c) => c.includes('--signal-setup'));
    assert.deepEqual(setups, ['-m 0 --signal-setup=3', '-m 1 --signal-setup=3', '-m 2 --signal-setup=3']);
    assert.deepEqual(calls.slice(0, 5), [
      '-L --output-json', '-m 0 --signal-setup=3', '-m 0 --output-json', '-m 0 --signal-get --output-json', '-m 0 --location-get --output-json',
    ]);
    assert.equal(calls.filter((c) => c === '-L --output-json').length, 2);
  });

  test('a handover (new cell, weaker signal) is reported as a change', async () => {
    const { logger } = capture();
    const files = threeModems();
    const { run } = recorded(files);
    const src = new ModemManagerSource({ carriers: CARRIERS, logger, run });
    let changes = 0;
    src.onChange(() => changes++);
    await src.pollNow();
    assert.equal(changes, 1);
    await src.pollNow();
    assert.equal(changes, 1, 'same readings: no change');
    files['-m 0 --location-get --output-json'] = 'location-0-handover.json';
    files['-m 0 --signal-get --output-json'] = 'signal-0-handover.json';
    await src.pollNow();
    assert.equal(changes, 2);
    const a = src.snapshot().radio?.find((r) => r.carrier === 'lte-a');
    assert.equal(a?.cellId, '01A2E117');
    assert.equal(a?.rsrpDbm, -111);
    assert.equal(a?.sinrDb, 1.8);
  });

  test('mmcli not installed (real ENOENT): one clear log line over many polls, no radio, no crash', async () => {
    const { logger, warnings } = capture();
    const src = new ModemManagerSource({ carriers: CARRIERS, logger, command: '/nonexistent/bin/mmcli' });
    for (let i = 0; i < 3; i++) await src.pollNow();
    assert.deepEqual(src.snapshot().radio, []);
    assert.equal(warnings().length, 1);
    assert.match(warnings()[0]!, /^mmcli not found \("\/nonexistent\/bin\/mmcli"\): no ModemManager context/);
  });

  test('ModemManager not running (mmcli exits 1): one log line with its error', async () => {
    const { logger, warnings } = capture();
    const { run } = recorded({ '-L --output-json': { code: 1, stdout: '', stderr: 'error: couldn\'t find the ModemManager process in the bus\n' } });
    const src = new ModemManagerSource({ carriers: CARRIERS, logger, run });
    for (let i = 0; i < 3; i++) await src.pollNow();
    assert.deepEqual(warnings(), ['mmcli -L --output-json failed (exit 1): error: couldn\'t find the ModemManager process in the bus']);
  });

  test('no modems: one log line, and one more when a modem appears', async () => {
    const { logger, lines, warnings } = capture();
    const files = threeModems();
    files['-L --output-json'] = 'list-none.json';
    const { run } = recorded(files);
    const src = new ModemManagerSource({ carriers: CARRIERS, logger, run });
    for (let i = 0; i < 3; i++) await src.pollNow();
    assert.deepEqual(src.snapshot().radio, []);
    assert.deepEqual(warnings(), ['ModemManager reports no modems: no radio context until one appears']);
    files['-L --output-json'] = 'list-three.json';
    await src.pollNow();
    assert.equal(src.snapshot().radio?.length, 2);
    assert.ok(lines.some((l) => l.msg === 'ModemManager reports 3 modem(s)'));
  });

  test('malformed JSON from one modem: logged once, naming the call; the other modems still count', async () => {
    const { logger, warnings } = capture();
    const files = threeModems();
    // A truncated write, as when mmcli is killed by its timeout.
    files['-m 1 --output-json'] = { code: 0, stdout: fixture('modem-1.json').slice(0, 200), stderr: '' };
    files['-m 0 --signal-get --output-json'] = { code: 0, stdout: '[]', stderr: '' };
    const { run } = recorded(files);
    const src = new ModemManagerSource({ carriers: CARRIERS, logger, run });
    for (let i = 0; i < 3; i++) await src.pollNow();
    const radio = src.snapshot().radio ?? [];
    assert.deepEqual(radio.map((r) => r.carrier), ['lte-a']);
    assert.equal(radio[0]?.operatorName, 'Telekom.de');
    assert.equal(radio[0]?.rsrpDbm, undefined, 'the signal output was not an object');
    const w = warnings().filter((m) => !m.startsWith('modem 2'));
    assert.equal(w.length, 2);
    assert.ok(w.some((m) => m.startsWith('unexpected mmcli output, ignored: mmcli -m 1: not JSON')), w.join('\n'));
    assert.ok(w.some((m) => m === 'unexpected mmcli output, ignored: mmcli -m 0 --signal-get: expected a JSON object, got an array'), w.join('\n'));
  });

  test('signal values unknown right after --signal-setup ("--"): operator and cell still reported', async () => {
    const { logger } = capture();
    const files = threeModems();
    files['-m 0 --signal-get --output-json'] = 'signal-unset.json';
    const { run } = recorded(files);
    const src = new ModemManagerSource({ carriers: CARRIERS, logger, run });
    await src.pollNow();
    const a = src.snapshot().radio?.find((r) => r.carrier === 'lte-a');
    assert.equal(a?.rsrpDbm, undefined);
    assert.equal(a?.sinrDb, undefined);
    assert.equal(a?.cellId, '01A2D00B');
    assert.equal(a?.technology, 'lte');
  });

  test('parsers: 3G modem, 3-digit MNC, technology ranking', () => {
    const umts = parseModem(fixture('modem-2.json'), '2');
    assert.equal(umts.technology, 'umts');
    assert.equal(umts.operatorName, 'o2 - de');
    const sig = parseSignal(fixture('signal-2.json'), '2', 'umts');
    assert.deepEqual(sig, {}, 'UMTS reports RSCP/EcIo, no RSRP/RSRQ/SINR');
    const us = JSON.parse(fixture('modem-0.json')) as { modem: { '3gpp': Record<string, string> } };
    us.modem['3gpp']['operator-code'] = '310410';
    const m = parseModem(JSON.stringify(us), '0');
    assert.equal(m.mcc, '310');
    assert.equal(m.mnc, '410');
    assert.equal(technologyOf(['lte', '5gnr']), 'nr');
    assert.equal(technologyOf(['gsm', 'edge']), 'other');
    assert.equal(technologyOf([]), undefined);
  });
});
