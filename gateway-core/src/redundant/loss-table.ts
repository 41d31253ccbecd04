// S4-6: the receiver's ONE loss table for all links of the redundant class. Every copy of a
// packet, whichever link it came on, is looked up here: a sequence in the table is awaited
// (deliver it and remove it), a sequence not in it and not new is a duplicate. One table rather
// than one per link, because a packet lost on one link is usually already on its way on another.
//
// The document builds the table as a binary tree rooted at the median of the missing sequences,
// splitting each side again at its median (7c: sent 1..8, missing 2, 5, 7 -> root 5, greater
// branch 7, smaller branch 2) so a lookup is O(log n) instead of a list's O(n). Missing
// sequences are discovered one by one in ascending order, which would degrade a plain search
// tree into a list, so this is a scapegoat tree: inserts and removals are plain BST operations,
// and a subtree that gets too lopsided is rebuilt with exactly the document's median split.
// With ALPHA close to 1/2 the tree stays near perfect balance (its height is at most
// log_{1/ALPHA}(n) + 1), at an amortised O(log n) rebuild cost; the table is bounded
// (maxEntries), so a rebuild never touches more than that many nodes.

/** One missing sequence and the state of its retransmission requests. */
export interface LossEntry {
  readonly seq: number;
  /** When the gap was noticed (receiver clock, us). */
  readonly detectedUs: number;
  /** NACKs sent for it so far. */
  nacks: number;
  /** When the last NACK for it left (-Infinity: none yet). */
  lastNackUs: number;
}

interface Node {
  entry: LossEntry;
  smaller: Node | undefined;
  greater: Node | undefined;
}

/** The tree shape, for tests and debugging: each node with its greater and smaller branch. */
export interface LossTreeShape {
  seq: number;
  smaller?: LossTreeShape;
  greater?: LossTreeShape;
}

/** Weight-balance factor: a child may hold at most ALPHA of its parent's subtree. */
const ALPHA = 0.55;
const LOG_INV_ALPHA = Math.log(1 / ALPHA);

export class LossTable {
  private root: Node | undefined;
  private n = 0;
  /** Largest size since the last full rebuild (scapegoat deletion rule). */
  private maxN = 0;
  /** Subtree rebuilds done (a measure of the balancing work). */
  rebuilds = 0;

  constructor(readonly maxEntries = 4096) {
    if (!(maxEntries >= 1)) throw new RangeError('loss table: maxEntries must be >= 1');
  }

  /** The document's construction (7c): a tree over these missing sequences, median-rooted at every level. */
  static fromMissing(seqs: readonly number[], nowUs: number, maxEntries = Math.max(1, seqs.length)): LossTable {
    const t = new LossTable(maxEntries);
    const sorted = [...new Set(seqs)].sort((a, b) => a - b).slice(0, maxEntries);
    const nodes = sorted.map((seq): Node => ({ entry: { seq, detectedUs: nowUs, nacks: 0, lastNackUs: -Infinity }, smaller: undefined, greater: undefined }));
    t.root = buildBalanced(nodes, 0, nodes.length);
    t.n = t.maxN = nodes.length;
    return t;
  }

  get size(): number {
    return this.n;
  }

  isFull(): boolean {
    return this.n >= this.maxEntries;
  }

  has(seq: number): boolean {
    return this.find(seq) !== undefined;
  }

  get(seq: number): LossEntry | undefined {
    return this.find(seq)?.entry;
  }

  private find(seq: number): Node | undefined {
    let x = this.root;
    while (x) {
      if (seq === x.entry.seq) return x;
      x = seq < x.entry.seq ? x.smaller : x.greater;
    }
    return undefined;
  }

  /**
   * Record a missing sequence. Returns its entry (the existing one if it was already there), or
   * undefined when the table is full: the caller then counts the sequence as lost.
   */
  insert(seq: number, nowUs: number): LossEntry | undefined {
    const path: Node[] = [];
    let x = this.root;
    while (x) {
      if (seq === x.entry.seq) return x.entry;
      path.push(x);
      x = seq < x.entry.seq ? x.smaller : x.greater;
    }
    if (this.n >= this.maxEntries) return undefined;
    const node: Node = { entry: { seq, detectedUs: nowUs, nacks: 0, lastNackUs: -Infinity }, smaller: undefined, greater: undefined };
    const parent = path[path.length - 1];
    if (!parent) this.root = node;
    else if (seq < parent.entry.seq) parent.smaller = node;
    else parent.greater = node;
    this.n++;
    if (this.n > this.maxN) this.maxN = this.n;
    // Too deep: find the lowest ancestor that is too lopsided (the scapegoat) and rebuild it.
    if (path.length > Math.floor(Math.log(this.n) / LOG_INV_ALPHA)) {
      let childSize = 1;
      for (let i = path.length - 1; i >= 0; i--) {
        const a = path[i] as Node;
        const sibling = a.smaller && a.greater ? (childIsSmaller(a, path[i + 1] ?? node) ? a.greater : a.smaller) : undefined;
        const size = childSize + 1 + sizeOf(sibling);
        if (childSize > ALPHA * size) {
          this.replace(path[i - 1], a, rebuild(a));
          this.rebuilds++;
          break;
        }
        childSize = size;
      }
    }
    return node.entry;
  }

  /** Remove a sequence (it arrived, or was given up); returns its entry, or undefined if it was not awaited. */
  remove(seq: number): LossEntry | undefined {
    let parent: Node | undefined;
    let x = this.root;
    while (x && x.entry.seq !== seq) {
      parent = x;
      x = seq < x.entry.seq ? x.smaller : x.greater;
    }
    if (!x) return undefined;
    const entry = x.entry;
    if (x.smaller && x.greater) {
      // Two children: take the in-order successor's entry and unlink the successor instead.
      let sp = x;
      let s = x.greater;
      while (s.smaller) {
        sp = s;
        s = s.smaller;
      }
      x.entry = s.entry;
      if (sp === x) sp.greater = s.greater;
      else sp.smaller = s.greater;
    } else {
      this.replace(parent, x, x.smaller ?? x.greater);
    }
    this.n--;
    if (this.n === 0) {
      this.maxN = 0;
    } else if (this.n < ALPHA * this.maxN) {
      this.root = rebuild(this.root as Node);
      this.maxN = this.n;
      this.rebuilds++;
    }
    return entry;
  }

  /** The smallest missing sequence (ordered delivery waits for it). */
  min(): LossEntry | undefined {
    let x = this.root;
    if (!x) return undefined;
    while (x.smaller) x = x.smaller;
    return x.entry;
  }

  /** Entries in ascending sequence order. */
  entries(): LossEntry[] {
    const out: LossEntry[] = [];
    inOrder(this.root, (n) => out.push(n.entry));
    return out;
  }

  height(): number {
    const h = (x: Node | undefined): number => (x ? 1 + Math.max(h(x.smaller), h(x.greater)) : 0);
    return h(this.root);
  }

  shape(): LossTreeShape | undefined {
    const s = (x: Node | undefined): LossTreeShape | undefined => {
      if (!x) return undefined;
      const out: LossTreeShape = { seq: x.entry.seq };
      const sm = s(x.smaller);
      const gr = s(x.greater);
      if (sm) out.smaller = sm;
      if (gr) out.greater = gr;
      return out;
    };
    return s(this.root);
  }

  clear(): void {
    this.root = undefined;
    this.n = this.maxN = 0;
  }

  private replace(parent: Node | undefined, old: Node, by: Node | undefined): void {
    if (!parent) this.root = by;
    else if (parent.smaller === old) parent.smaller = by;
    else parent.greater = by;
  }
}

function childIsSmaller(a: Node, child: Node): boolean {
  return a.smaller === child;
}

function sizeOf(x: Node | undefined): number {
  if (!x) return 0;
  return 1 + sizeOf(x.smaller) + sizeOf(x.greater);
}

function inOrder(x: Node | undefined, f: (n: Node) => void): void {
  // Iterative: a bounded but large table must not hit the stack limit.
  const stack: Node[] = [];
  let cur = x;
  while (cur || stack.length > 0) {
    while (cur) {
      stack.push(cur);
      cur = cur.smaller;
    }
    const n = stack.pop() as Node;
    f(n);
    cur = n.greater;
  }
}

function rebuild(x: Node): Node {
  const nodes: Node[] = [];
  inOrder(x, (n) => nodes.push(n));
  return buildBalanced(nodes, 0, nodes.length) as Node;
}

/**
 * The document's partition: the middle sequence becomes the parent, the greater ones its first
 * branch, the smaller ones its second, and each branch is split the same way. For an even count
 * the document allows either middle; the lower one is taken.
 */
function buildBalanced(nodes: Node[], lo: number, hi: number): Node | undefined {
  if (lo >= hi) return undefined;
  const mid = lo + ((hi - lo - 1) >> 1);
  const m = nodes[mid] as Node;
  m.smaller = buildBalanced(nodes, lo, mid);
  m.greater = buildBalanced(nodes, mid + 1, hi);
  return m;
}
