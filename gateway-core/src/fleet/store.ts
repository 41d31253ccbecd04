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
    await writeFile(tmp, JSON.stringify(state));
    await rename(tmp, this.path);
  }
}
