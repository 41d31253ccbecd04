// Runs every scenario in bench/scenarios/ with bench/run.ts (one child process each, so that one
// failing scenario does not stop the others), keeps the results in bench/results/all/ and rewrites
// the results table in bench/README.md between its markers.
//
//   npm run bench:all [-- --only NAME[,NAME...]] [--no-readme]
//
// Scenarios named optional-*.json may reference files outside the repository (real traces in
// ../shared/traces); when such a file is missing the scenario is skipped with a message.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { cpus, loadavg, release } from 'node:os';
import { basename, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../test/harness/apps.js';
import { isRoot } from '../test/harness/root.js';
import { validateResult, type BenchResult } from './lib/bench-result.js';
import { modelCatalog } from './lib/emulation.js';
import { ScenarioError, loadScenario } from './lib/scenario.js';
import { renderAllTable, type ScenarioOutcome } from './lib/all-table.js';

const SCENARIOS = join(REPO_ROOT, 'bench', 'scenarios');
const RESULTS = join(REPO_ROOT, 'bench', 'results', 'all');
const README = join(REPO_ROOT, 'bench', 'README.md');
export const BEGIN = '<!-- bench:all:begin (rewritten by npm run bench:all) -->';
export const END = '<!-- bench:all:end -->';

function log(msg: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

function main(): void {
  const { values } = parseArgs({
    options: { only: { type: 'string' }, 'no-readme': { type: 'boolean', default: false } },
    strict: true,
  });
  if (!isRoot()) {
    process.stderr.write('bench:all: needs root (network namespaces, TUN devices)\n');
    process.exit(2);
  }
  const only = values.only?.split(',').map((x) => x.trim()).filter(Boolean);
  const files = readdirSync(SCENARIOS).filter((f) => f.endsWith('.json'))
    // The optional ones last: the table reads the main scenarios first.
    .sort((a, b) => Number(a.startsWith('optional-')) - Number(b.startsWith('optional-')) || a.localeCompare(b))
    .filter((f) => !only || only.includes(basename(f, '.json')));
  const started = Date.now();
  const date = new Date().toISOString();
  const load = loadavg().map((x) => x.toFixed(2));
  const outcomes: ScenarioOutcome[] = [];
  for (const f of files) {
    const file = join(SCENARIOS, f);
    const name = basename(f, '.json');
    try {
      loadScenario(file, modelCatalog());
    } catch (err) {
      const missingFile = err instanceof ScenarioError && err.problems.every((p) => p.includes('trace file not found'));
      if (f.startsWith('optional-') && missingFile) {
        log(`${name}: skipped, a trace file it needs is not here (${(err as ScenarioError).problems[0]})`);
        outcomes.push({ name, skipped: 'its trace files (../shared/traces) are not on this machine' });
        continue;
      }
      log(`${name}: invalid: ${(err as Error).message}`);
      outcomes.push({ name, error: (err as Error).message });
      continue;
    }
    const out = join(RESULTS, `${name}.json`);
    log(`${name}: running`);
    const t0 = Date.now();
    const r = spawnSync(process.execPath, ['--conditions=source', '--import', 'tsx', join(REPO_ROOT, 'bench', 'run.ts'),
      '--scenario', file, '--out', out], { cwd: REPO_ROOT, stdio: ['ignore', 'inherit', 'inherit'], timeout: 15 * 60_000 });
    const seconds = Math.round((Date.now() - t0) / 1000);
    if (!existsSync(out) || r.status === 2 || r.status === null) {
      outcomes.push({ name, error: `bench exited ${r.status ?? r.signal} after ${seconds} s, no result` });
      continue;
    }
    const result = JSON.parse(readFileSync(out, 'utf8')) as BenchResult;
    const problems = validateResult(result);
    if (problems.length || result.date < date) {
      outcomes.push({ name, error: problems.length ? `invalid result: ${problems.join('; ')}` : 'stale result (this run wrote none)' });
      continue;
    }
    outcomes.push({ name, result, seconds });
  }
  const totalS = Math.round((Date.now() - started) / 1000);
  const table = renderAllTable(outcomes, {
    date, totalS, command: `npm run bench:all${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    machine: `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, Linux ${release()}, load average at start ${load.join(' ')}`,
    resultsDir: relative(REPO_ROOT, RESULTS),
  });
  process.stdout.write(`${table}\n`);
  if (!values['no-readme']) {
    const text = readFileSync(README, 'utf8');
    const a = text.indexOf(BEGIN);
    const b = text.indexOf(END);
    if (a < 0 || b < a) throw new Error(`${README}: markers ${BEGIN} ... ${END} not found`);
    writeFileSync(README, `${text.slice(0, a + BEGIN.length)}\n${table}\n${text.slice(b)}`);
    log(`bench/README.md table rewritten (${totalS} s in total)`);
  }
  if (outcomes.some((o) => o.error || (o.result && Object.values(o.result.details).some((d) => d.errors.length)))) process.exitCode = 1;
}

await mkdir(RESULTS, { recursive: true });
main();
