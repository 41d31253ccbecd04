// S2-5 context: what the edge knows about its surroundings beyond its own packets — the radio
// state of each carrier's modem and the vehicle's position and speed. Sources are pluggable
// (ModemManager, gpsd, the link emulator's models); the telemetry reporter and the S2-12
// mobility mode read only these shapes, never a source directly.

/** Radio state of one carrier as its modem reports it. Every field is optional: modems differ. */
export interface RadioContext {
  /** Carrier name as in the edge config (carriers[].name). */
  carrier: string;
  operatorName?: string;
  mcc?: string;
  mnc?: string;
  /** Access technology: 'lte', 'nr', 'umts', ... (CARRIER_TECHNOLOGIES). */
  technology?: string;
  /** Reference signal received power, dBm. */
  rsrpDbm?: number;
  /** Reference signal received quality, dB. */
  rsrqDb?: number;
  /** Signal to interference plus noise ratio, dB. */
  sinrDb?: number;
  /** Serving cell id as the modem prints it (hex or decimal string). */
  cellId?: string;
  /** When this was read, ms since the epoch. */
  atMs: number;
}

/** Where the vehicle is and how fast it moves. */
export interface MotionContext {
  latitude?: number;
  longitude?: number;
  /** Ground speed, km/h. */
  speedKmh?: number;
  /** When this was read, ms since the epoch. */
  atMs: number;
}

export interface ContextSnapshot {
  radio: RadioContext[];
  motion?: MotionContext;
}

/** One pluggable source. A source that cannot read (no modem, gpsd down) reports nothing and says why once in its log. */
export interface ContextSource {
  readonly name: string;
  start(): Promise<void>;
  /** The latest values; a source contributes only what it knows. */
  snapshot(): Partial<ContextSnapshot>;
  /** Called on each change (new fix, new signal reading). Returns an unsubscribe function. */
  onChange(listener: () => void): () => void;
  stop(): Promise<void>;
}
