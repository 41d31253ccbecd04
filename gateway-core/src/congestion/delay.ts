// S3-1/S3-2: the delay D of one round trip from four timestamps, two per clock:
//   D = (TS4 - TS1) - (TS3 - TS2)
// TS1 data sent (our clock), TS2 data received (peer clock), TS3 ack sent (peer clock),
// TS4 ack received (our clock). Each subtraction stays within one clock, so the two clocks
// need no synchronisation, and the peer's turnaround (ack delay) is not counted as network delay.
// The wire carries the low 32 bits of microsecond clocks; each difference is taken modulo 2^32
// (one wrap of either clock, ~71 min, is harmless because only differences are used).

/** Difference a - b of two 32-bit wire times in microseconds (signed, tolerant of one wrap). */
function diff32(a: number, b: number): number {
  return (a - b) | 0;
}

/** S3-2 delay in microseconds from the four 32-bit wire timestamps (may be negative if they are inconsistent). */
export function s3Delay(ts1: number, ts2: number, ts3: number, ts4: number): number {
  return diff32(ts4, ts1) - diff32(ts3, ts2);
}
