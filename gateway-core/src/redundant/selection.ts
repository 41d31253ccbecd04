// S4-2 / S4-3: which links carry the redundant class. Links are sorted by delay and the n
// lowest are taken (n > 1), re-selected on every delay update.
//
// Delay per link (S4-2): while the class is idle, from probes (probe -> echo); while data flows,
// from the data itself (send time of a packet on the link -> its ack/echo arriving), so no probe
// competes with the data on a link that carries it. `probeWanted()` tells the session which
// links still need probes: every link while idle, only the unselected ones while data flows
// (a departure from the document, which stops probing altogether: without it a link that was
// slow once could never be measured back into the selection).
//
// n grows with the amount of data (the document: more data, larger n). The rule here: a burst
// of k packets is delivered without a repair only if every packet has at least one copy
// through, so with per-link loss p_i the chance that the burst needs a repair is about
// k * p_1 * ... * p_n. n is the smallest count >= minLinks for which that is <= targetLoss,
// capped at maxLinks and at the links available. With the defaults (2% assumed loss, target
// 1e-3, up to 4 links): 1-2 packets -> 2 links, up to 125 packets (~180 KB) -> 3, more -> 4.
// Measured loss (setLoss) replaces the assumption per link, so clean links need fewer copies.
//
// Policy (optional): user-preferred link types (links of those types under a delay threshold
// are ranked ahead of the others), and a service -> link-type map (e.g. video -> the two WLAN
// bands: those links are always selected while their delay is under the service's threshold;
// the rest of n is filled by delay).

export type DelaySource = 'probe' | 'data';

export interface LinkSpec {
  id: number;
  /** Transport type, e.g. 'lte', 'nr', 'wlan5', 'wlan2', 'eth', 'sat'. */
  type: string;
  name?: string;
}

export interface SelectionPolicy {
  /** Smallest n (> 1: redundancy is the point). Default 2. */
  minLinks?: number;
  /** Largest n. Default 4. */
  maxLinks?: number;
  /** Target chance that a burst needs a repair (see the n rule). Default 1e-3. */
  targetLoss?: number;
  /** Loss fraction assumed for a link without a measurement. Default 0.02. */
  assumedLoss?: number;
  /** Link types the user prefers. */
  preferredTypes?: readonly string[];
  /** Preferred types only count while their delay is under this (us). Default: no limit. */
  preferredMaxDelayUs?: number;
  /** Service name -> the link types that must carry it while their delay is under maxDelayUs. */
  services?: Readonly<Record<string, { types: readonly string[]; maxDelayUs: number }>>;
  /** Data within this long means "data flows" (S4-2). Default 200 ms. */
  activeWindowUs?: number;
}

export interface LinkDelay {
  id: number;
  type: string;
  usable: boolean;
  /** Smoothed delay, us (undefined: never measured). */
  delayUs: number | undefined;
  lastSampleUs: number;
  lastSource: DelaySource | undefined;
  loss: number | undefined;
  /** How long data sent on the link has gone unanswered, us (0: none); a lower bound on its delay now. */
  stallUs: number;
}

const SMOOTH = 1 / 4;

export class LinkSelector {
  private readonly links = new Map<number, LinkDelay>();
  private readonly minLinks: number;
  private readonly maxLinks: number;
  private readonly targetLoss: number;
  private readonly assumedLoss: number;
  private readonly activeWindowUs: number;
  private lastDataUs = -Infinity;
  private demandPackets = 1;
  private service: string | undefined;
  private selected: number[] = [];
  /** Re-selections that changed the set. */
  changes = 0;
  /** Called when the selected set changes. */
  onChange: ((ids: readonly number[]) => void) | undefined;

  constructor(specs: readonly LinkSpec[], private policy: SelectionPolicy = {}) {
    this.minLinks = Math.max(2, policy.minLinks ?? 2);
    this.maxLinks = Math.max(this.minLinks, policy.maxLinks ?? 4);
    this.targetLoss = policy.targetLoss ?? 1e-3;
    this.assumedLoss = policy.assumedLoss ?? 0.02;
    this.activeWindowUs = policy.activeWindowUs ?? 200_000;
    for (const s of specs) this.links.set(s.id, { id: s.id, type: s.type, usable: true, delayUs: undefined, lastSampleUs: -Infinity, lastSource: undefined, loss: undefined, stallUs: 0 });
  }

  /** A delay sample for a link (S4-2). Re-selects at once (S4-3). */
  onDelaySample(id: number, us: number, source: DelaySource, nowUs: number): void {
    const l = this.links.get(id);
    if (!l || !(us >= 0) || !Number.isFinite(us)) return;
    l.delayUs = l.delayUs === undefined ? us : l.delayUs + (us - l.delayUs) * SMOOTH;
    l.lastSampleUs = nowUs;
    l.lastSource = source;
    // A probe answered: the link works now, whatever data it swallowed before.
    if (source === 'probe') l.stallUs = 0;
    this.reselect();
  }

  /**
   * The sender's view of a link that carries data: its oldest copy has gone unanswered for
   * `us` (0: nothing overdue). A link is at least that slow right now, so it ranks by
   * max(delay, stall): a link that stops answering (outage, handover) leaves the selection
   * within about two of its delays, without waiting for the session's liveness verdict.
   */
  setStall(id: number, us: number): void {
    const l = this.links.get(id);
    if (!l || l.stallUs === us) return;
    l.stallUs = us;
    this.reselect();
  }

  /** Delay a link ranks by: measured, or longer while it is stalled. */
  effectiveDelayUs(id: number): number {
    const l = this.links.get(id);
    if (!l) return Infinity;
    return Math.max(l.delayUs ?? Infinity, l.stallUs);
  }

  /** The session's liveness verdict (a down link is never selected). */
  setUsable(id: number, usable: boolean): void {
    const l = this.links.get(id);
    if (!l || l.usable === usable) return;
    l.usable = usable;
    this.reselect();
  }

  /** Measured loss fraction of a link (0..1), used by the n rule. */
  setLoss(id: number, loss: number): void {
    const l = this.links.get(id);
    if (l && loss >= 0 && loss <= 1) l.loss = loss;
  }

  /** The class sent data now (S4-2: data flows, so no probes on its links). */
  markData(nowUs: number): void {
    this.lastDataUs = nowUs;
  }

  dataFlowing(nowUs: number): boolean {
    return nowUs - this.lastDataUs < this.activeWindowUs;
  }

  /** Should the session probe this link now? Idle: yes; data flowing: only links not carrying it. */
  probeWanted(id: number, nowUs: number): boolean {
    return !this.dataFlowing(nowUs) || !this.selected.includes(id);
  }

  delay(id: number): LinkDelay | undefined {
    const l = this.links.get(id);
    return l ? { ...l } : undefined;
  }

  /** Usable links, lowest delay first (unmeasured last, by id). */
  ranked(): number[] {
    return [...this.links.values()]
      .filter((l) => l.usable)
      .sort((a, b) => this.effectiveDelayUs(a.id) - this.effectiveDelayUs(b.id) || a.id - b.id)
      .map((l) => l.id);
  }

  /** Copies added to every selection (S2-12 high-speed mode raises real-time protection). */
  private extra = 0;

  /** Add `k` links to every selection beyond what the loss rule asks for (0 = the rule alone). */
  setExtraLinks(k: number): void {
    this.extra = Math.max(0, Math.floor(k));
    this.reselect();
  }

  /** n for a burst of `packets` over the ranked links (see the rule at the top), plus any extra links. */
  linksFor(packets: number, ranked = this.ranked()): number {
    return Math.min(ranked.length, this.linksByRule(packets, ranked) + this.extra);
  }

  private linksByRule(packets: number, ranked: readonly number[]): number {
    const avail = ranked.length;
    const cap = Math.min(this.maxLinks, avail);
    if (cap <= this.minLinks) return cap;
    const k = Math.max(1, packets);
    let miss = 1;
    for (let n = 1; n <= cap; n++) {
      const l = this.links.get(ranked[n - 1] as number);
      miss *= Math.max(1e-6, l?.loss ?? this.assumedLoss);
      if (n >= this.minLinks && k * miss <= this.targetLoss * (1 + 1e-9)) return n;
    }
    return cap;
  }

  /** Replace the S4-3 preferences (link types, service map) at run time; the next selection uses them. */
  setPreferences(p: Pick<SelectionPolicy, 'preferredTypes' | 'preferredMaxDelayUs' | 'services'>): void {
    this.policy = { ...this.policy, preferredTypes: p.preferredTypes, preferredMaxDelayUs: p.preferredMaxDelayUs, services: p.services };
  }

  /** Select for a burst of `packets` (the amount of data) and an optional service; remembers both for re-selection. */
  select(packets: number, service?: string): readonly number[] {
    this.demandPackets = Math.max(1, packets);
    this.service = service;
    this.reselect();
    return this.selected;
  }

  current(): readonly number[] {
    return this.selected;
  }

  private reselect(): void {
    const ranked = this.ranked();
    const ahead: number[] = [];
    const required: number[] = [];
    const svc = this.service !== undefined ? this.policy.services?.[this.service] : undefined;
    if (svc) {
      for (const id of ranked) {
        const l = this.links.get(id) as LinkDelay;
        if (svc.types.includes(l.type) && this.effectiveDelayUs(id) <= svc.maxDelayUs) required.push(id);
      }
    }
    const pref = this.policy.preferredTypes;
    if (pref && pref.length > 0) {
      const limit = this.policy.preferredMaxDelayUs ?? Infinity;
      for (const id of ranked) {
        const l = this.links.get(id) as LinkDelay;
        if (!required.includes(id) && pref.includes(l.type) && this.effectiveDelayUs(id) <= limit) ahead.push(id);
      }
    }
    const order = [...required, ...ahead, ...ranked.filter((id) => !required.includes(id) && !ahead.includes(id))];
    const n = Math.max(required.length, this.linksFor(this.demandPackets, ranked));
    const next = order.slice(0, n);
    if (next.length !== this.selected.length || next.some((id, i) => id !== this.selected[i])) {
      this.selected = next;
      this.changes++;
      this.onChange?.(next);
    }
  }
}
