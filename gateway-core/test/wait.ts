// Polling for the tests: wait until a condition holds, failing with what was awaited.
import assert from 'node:assert/strict';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every 20 ms; fails the test with "`what` not within `ms` ms" when it never holds. */
export async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`${what} not within ${ms} ms`);
    await sleep(20);
  }
}
