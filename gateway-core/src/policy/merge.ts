// Layering of policies: global policy, then a per-edge override, then overlays that cloud-side
// intelligence derives. Mappings merge key by key (so an overlay that demotes one carrier leaves
// the others alone); lists and scalars are replaced whole (a list of rules is one decision:
// appending another source's rules to it would make their order arbitrary).
import type { PolicyOverlay } from './model.js';

function isMapping(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** `over` merged onto `base`; neither is modified. `null` in `over` removes the key. */
export function mergeLayers(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    if (v === null) {
      delete out[k];
      continue;
    }
    const b = out[k];
    out[k] = isMapping(v) && isMapping(b) ? mergeLayers(b, v) : structuredClone(v);
  }
  return out;
}

/** All layers, first (lowest) to last (highest). */
export function mergeAll(layers: readonly (PolicyOverlay | Record<string, unknown> | undefined)[]): Record<string, unknown> {
  return layers.reduce<Record<string, unknown>>((acc, l) => (l ? mergeLayers(acc, l as Record<string, unknown>) : acc), {});
}
