// The shape of bench/results/foundation-*.json.

export interface CpuFigure {
  /** % of one core over the run. */
  cpuPct: number;
  /** Resident memory at the end of the run. */
  rssMiB: number;
}

export interface Measurement {
  system: 'best-single' | 'braid' | 'openvpn' | 'raw-veth';
  direction: 'download' | 'upload';
  /** iperf3 -P */
  parallel: number;
  seconds: number;
  omitS: number;
  /** iperf3 client and target, as run. */
  command: string;
  /** Receiver goodput; absent when the run failed. */
  mbps?: number;
  senderMbps?: number;
  retransmits?: number;
  /** mbps / capacity (bonded part only). */
  fractionOfCapacity?: number;
  /** Per tunnel process group ("edge", "cloud"). */
  cpu?: Record<string, CpuFigure>;
  /** Whole machine busy, % of all cores, over the run. */
  hostBusyPct?: number;
  /** Bytes that crossed each counted interface during the run (carriers, tunnel devices): where the traffic went. */
  bytesSeen?: Record<string, number>;
  /** Share of the carrier bytes per carrier (bonded part only). */
  carrierShares?: number[];
  error?: string;
}

export interface FoundationResult {
  benchmark: 'foundation';
  date: string;
  durationS: number;
  command: string;
  host: {
    cpus: number;
    cpuModel: string;
    kernel: string;
    node: string;
    iperf3: string;
    openvpn: string;
    loadAverageAtStart: number[];
  };
  bonded: {
    carriersMbit: number[];
    capacityMbit: number;
    parallel: number;
    seconds: number;
    omitS: number;
    results: Measurement[];
  };
  singleCarrier: {
    parallel: number[];
    seconds: number;
    omitS: number;
    /** system -> why it was not measured */
    skipped: Record<string, string>;
    results: Measurement[];
  };
  /** What path each system's traffic took, in words. */
  paths: Record<string, string>;
  /** Setup errors (a whole part that could not run). */
  errors: string[];
}
