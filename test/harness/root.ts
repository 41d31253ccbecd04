// Tests that need root (network namespaces, TUN, SO_MARK) call requireRoot(t) first. Without
// root they SKIP with a printed reason on a developer machine, but FAIL under CI=true: a CI run
// that silently skipped the integration tests would report green for code it never exercised.
import type { TestContext } from 'node:test';

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/**
 * true when the test may go on. Not root: throws when CI=true (the test fails), otherwise calls
 * t.skip(reason), prints the reason and returns false (the caller returns at once).
 */
export function requireRoot(t: TestContext): boolean {
  if (isRoot()) return true;
  const reason = `needs root (network namespaces, TUN devices); running as uid ${process.getuid?.() ?? '?'}`;
  if (process.env.CI === 'true') throw new Error(`${reason}, and CI=true: root tests must not be skipped in CI`);
  console.log(`# skipped ${t.name}: ${reason}`);
  t.skip(reason);
  return false;
}
