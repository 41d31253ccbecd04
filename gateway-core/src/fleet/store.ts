// Where the cloud keeps its fleet state (history, what each edge's stream acknowledged, the
// overlays it derived) so that a restarted replica picks up where it left off. Behind an
// interface: where the state lives across replicas is the Kubernetes deployment's choice; the
// file-backed store serves one replica with a persistent volume.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { FleetStateDocument } from './history.js';

export interface FleetStateStore {
  /** The saved state, or undefined when there is none yet. Throws on a corrupt store (with the reason). */
  load(): Promise<FleetStateDocument | undefined>;
  save(state: FleetStateDocument): Promise<void>;
}

export class MemoryStateStore implements FleetStateStore {
  private doc: string | undefined;

  async load(): Promise<FleetStateDocument | undefined> {
    return this.doc === undefined ? undefined : (JSON.parse(this.doc) as FleetStateDocument);
  }

  async save(state: FleetStateDocument): Promise<void> {
    this.doc = JSON.stringify(state);
  }
}

const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * JSON.stringify of the whole document at once blocked the event loop for about half a second
 * with 1,000 edges (the fleet bench saw acknowledgements delayed by it); this serialises it one
 * slice of edges at a time and lets other work run in between. The result is the same JSON.
 */
async function stringifyInSlices(doc: FleetStateDocument, edgesPerSlice = 50): Promise<string> {
  const parts: string[] = [];
  let n = 0;
  for (const [id, e] of Object.entries(doc.edges)) {
    parts.push(`${JSON.stringify(id)}:${JSON.stringify(e)}`);
    if (++n % edgesPerSlice === 0) await yieldToLoop();
  }
  const head = JSON.stringify({ format: doc.format, savedAtMs: doc.savedAtMs, overlays: doc.overlays });
  return `${head.slice(0, -1)},"edges":{${parts.join(',')}}}`;
}

/** One JSON file, replaced atomically (write to a temporary file, then rename over it). */
export class FileStateStore implements FleetStateStore {
  constructor(readonly path: string) {}

  async load(): Promise<FleetStateDocument | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new Error(`fleet state ${this.path} is not valid JSON: ${(e as Error).message}`);
    }
    const format = (doc as { format?: unknown } | null)?.format;
    if (format !== 'braid.fleet-state.v1') throw new Error(`fleet state ${this.path}: unknown format ${JSON.stringify(format)} (expected "braid.fleet-state.v1")`);
    return doc as FleetStateDocument;
  }

  async save(state: FleetStateDocument): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    await writeFile(tmp, await stringifyInSlices(state));
    await rename(tmp, this.path);
  }
}
