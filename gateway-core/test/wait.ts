// Polling for the tests: wait until a condition holds, failing with what was awaited.
import assert from 'node:assert/strict';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every `everyMs` for up to `ms` ms; true once it is truthy, false when it never was. */
export async function poll(cond: () => unknown, ms: number, everyMs = 20): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await sleep(everyMs);
  }
  return true;
}

/**
 * Polls `cond` every `everyMs` (20 ms); fails the test with "`what` not within `ms` ms" when it
 * never holds, followed by `detail()` (read only then: the state seen last, a log tail).
 */
export async function until(what: string, cond: () => unknown, ms = 5000, everyMs = 20, detail?: () => string): Promise<void> {
  if (!(await poll(cond, ms, everyMs))) assert.fail(`${what} not within ${ms} ms${detail ? `\n${detail()}` : ''}`);
}

/**
 * Calls `probe` every `everyMs` (20 ms) until it gives a value other than undefined, and returns
 * that value; a probe that throws is called again. Fails like `until`, with the last error.
 */
export async function untilValue<T>(what: string, probe: () => T | undefined | Promise<T | undefined>,
  ms = 5000, everyMs = 20, detail?: () => string): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) break;
    await sleep(everyMs);
  }
  const why = last === undefined ? '' : ` (last error: ${last instanceof Error ? last.message : String(last)})`;
  assert.fail(`${what} not within ${ms} ms${why}${detail ? `\n${detail()}` : ''}`);
}
