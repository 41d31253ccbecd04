// The demo's real traffic: repeated HTTP downloads from nginx, repeated uploads to the sink and
// a constant-rate iperf3 UDP stream, all from the client namespace to the server's multipath
// address. Every finished transfer is checked byte for byte (sha256).
import { curlDownload, curlUpload, iperfUdp } from '../harness/apps.js';
import type { Topology } from '../harness/topology.js';

export interface TrafficPlan {
  /** URL of the download file and its sha256. */
  downloadUrl: string;
  downloadSha256: string;
  /** Parallel download loops (more flows fill more paths). */
  downloadLoops: number;
  uploadUrl: string;
  uploadFile: string;
  udp: { host: string; port: number; rateMbit: number; reverse: boolean; segmentS: number };
  /** Traffic stops at this time (ms since epoch); undefined = until stop() is called. */
  deadline?: number;
}

export interface TrafficStats {
  downloads: { ok: number; failed: number; aborted: number; bytes: number; bytesOk: number };
  uploads: { ok: number; failed: number; aborted: number; bytesOk: number };
  udp: { runs: number; failed: number; packets: number; lostPackets: number; bytesReceived: number; lastLossPercent: number | null };
  errors: string[];
}

export class DemoTraffic {
  readonly stats: TrafficStats = {
    downloads: { ok: 0, failed: 0, aborted: 0, bytes: 0, bytesOk: 0 },
    uploads: { ok: 0, failed: 0, aborted: 0, bytesOk: 0 },
    udp: { runs: 0, failed: 0, packets: 0, lostPackets: 0, bytesReceived: 0, lastLossPercent: null },
    errors: [],
  };
  private readonly abort = new AbortController();
  private loops: Promise<void>[] = [];

  constructor(private readonly topo: Topology, private readonly plan: TrafficPlan) {}

  start(): void {
    for (let i = 0; i < this.plan.downloadLoops; i++) this.loops.push(this.downloadLoop());
    this.loops.push(this.uploadLoop(), this.udpLoop());
    if (this.plan.deadline !== undefined) {
      const timer = setTimeout(() => this.abort.abort(), Math.max(0, this.plan.deadline - Date.now()));
      this.abort.signal.addEventListener('abort', () => clearTimeout(timer));
    }
  }

  /** Aborts whatever is in flight (not counted as failures) and waits for the loops to end. */
  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.all(this.loops);
  }

  get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  /** Every finished transfer intact, and at least one download finished. */
  get transferOk(): boolean {
    const s = this.stats;
    return s.downloads.ok > 0 && s.downloads.failed === 0 && s.uploads.failed === 0;
  }

  /** Application bytes delivered: downloads as they stream, uploads when confirmed, UDP received. */
  get goodBytes(): number {
    return this.goodBytesDown + this.goodBytesUp;
  }

  get goodBytesDown(): number {
    const s = this.stats;
    return s.downloads.bytes + (this.plan.udp.reverse ? s.udp.bytesReceived : 0);
  }

  get goodBytesUp(): number {
    const s = this.stats;
    return s.uploads.bytesOk + (this.plan.udp.reverse ? 0 : s.udp.bytesReceived);
  }

  private note(err: string): void {
    if (this.stats.errors.length < 20) this.stats.errors.push(err);
  }

  private async downloadLoop(): Promise<void> {
    const d = this.stats.downloads;
    while (!this.stopped) {
      const r = await curlDownload(this.topo, this.plan.downloadUrl, {
        timeoutS: 120, signal: this.abort.signal, onBytes: (n) => { d.bytes += n; },
      });
      if (r.aborted) d.aborted++;
      else if (r.ok && r.sha256 === this.plan.downloadSha256) {
        d.ok++;
        d.bytesOk += r.bytes;
      } else {
        d.failed++;
        this.note(`download: ${r.error ?? `sha256 mismatch after ${r.bytes} bytes`}`);
        await this.pause(1000);
      }
    }
  }

  private async uploadLoop(): Promise<void> {
    const u = this.stats.uploads;
    while (!this.stopped) {
      const r = await curlUpload(this.topo, this.plan.uploadUrl, this.plan.uploadFile, { timeoutS: 120, signal: this.abort.signal });
      if (r.aborted || this.stopped) u.aborted++;
      else if (r.ok) {
        u.ok++;
        u.bytesOk += r.bytes;
      } else {
        u.failed++;
        this.note(`upload: ${r.error ?? 'failed'}`);
      }
      await this.pause(2000); // uploads are the minor direction; leave room for the downloads
    }
  }

  private async udpLoop(): Promise<void> {
    const u = this.stats.udp;
    const { host, port, rateMbit, reverse, segmentS } = this.plan.udp;
    while (!this.stopped) {
      // In a timed run, the last segment ends before the deadline so its report is complete.
      const left = this.plan.deadline === undefined ? Infinity : (this.plan.deadline - Date.now()) / 1000 - 1;
      const seconds = Math.floor(Math.min(segmentS, left));
      if (seconds < 2) return;
      try {
        const r = await iperfUdp(this.topo, { host, port, rateMbit, reverse, seconds, signal: this.abort.signal });
        u.runs++;
        u.packets += r.packets;
        u.lostPackets += r.lostPackets;
        u.bytesReceived += r.bytesReceived;
        u.lastLossPercent = r.lostPercent;
      } catch (err) {
        if (this.stopped) return;
        u.failed++;
        this.note(`udp: ${(err as Error).message}`);
        await this.pause(1000);
      }
    }
  }

  private pause(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.abort.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.abort.signal.addEventListener('abort', done);
    });
  }
}
