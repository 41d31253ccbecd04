// NMEA 0183 tracks for gpsfake: a vehicle on a straight line at constant speed, one fix per
// second, each fix a GGA (position, fix quality) and an RMC (position, speed over ground in
// knots, course), with valid checksums.

/** XOR of the characters between '$' and '*', two upper-case hex digits. */
export function nmeaChecksum(body: string): string {
  let c = 0;
  for (let i = 0; i < body.length; i++) c ^= body.charCodeAt(i);
  return c.toString(16).toUpperCase().padStart(2, '0');
}

export const sentence = (body: string): string => `$${body}*${nmeaChecksum(body)}`;

/** ddmm.mmmmm (latitude, 2 degree digits) or dddmm.mmmmm (longitude, 3). */
function angle(v: number, degDigits: number): string {
  const a = Math.abs(v);
  const d = Math.floor(a);
  const m = (a - d) * 60;
  return `${String(d).padStart(degDigits, '0')}${m.toFixed(5).padStart(8, '0')}`;
}

export interface TrackOptions {
  startLat: number;
  startLon: number;
  speedKmh: number;
  /** Course over ground, degrees clockwise from north. */
  courseDeg: number;
  fixes: number;
  /** UTC of the first fix (default 2026-11-23T12:00:00Z). */
  start?: Date;
}

export interface Fix { lat: number; lon: number; at: Date }

/** The fixes of the track (positions by flat-earth steps: fine over a few km). */
export function trackFixes(o: TrackOptions): Fix[] {
  const mps = o.speedKmh / 3.6;
  const rad = (o.courseDeg * Math.PI) / 180;
  const t0 = (o.start ?? new Date('2026-11-23T12:00:00Z')).getTime();
  const out: Fix[] = [];
  for (let i = 0; i < o.fixes; i++) {
    const north = mps * i * Math.cos(rad);
    const east = mps * i * Math.sin(rad);
    out.push({
      lat: o.startLat + north / 111_320,
      lon: o.startLon + east / (111_320 * Math.cos((o.startLat * Math.PI) / 180)),
      at: new Date(t0 + i * 1000),
    });
  }
  return out;
}

/** The NMEA text (CRLF line ends, as a receiver sends it). */
export function nmeaTrack(o: TrackOptions): string {
  const knots = (o.speedKmh / 1.852).toFixed(2);
  const lines: string[] = [];
  for (const f of trackFixes(o)) {
    const iso = f.at.toISOString();
    const hms = `${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}.00`;
    const dmy = `${iso.slice(8, 10)}${iso.slice(5, 7)}${iso.slice(2, 4)}`;
    const lat = `${angle(f.lat, 2)},${f.lat >= 0 ? 'N' : 'S'}`;
    const lon = `${angle(f.lon, 3)},${f.lon >= 0 ? 'E' : 'W'}`;
    lines.push(sentence(`GPGGA,${hms},${lat},${lon},1,10,0.8,42.0,M,-8.0,M,,`));
    lines.push(sentence(`GPRMC,${hms},A,${lat},${lon},${knots},${o.courseDeg.toFixed(1)},${dmy},,,A`));
  }
  return lines.join('\r\n') + '\r\n';
}

/** Great-circle distance, m (haversine). */
export function distanceM(a: { lat: number; lon: number }, b: { lat: number; lon: number }): number {
  const r = (d: number): number => (d * Math.PI) / 180;
  const h = Math.sin(r(b.lat - a.lat) / 2) ** 2 + Math.cos(r(a.lat)) * Math.cos(r(b.lat)) * Math.sin(r(b.lon - a.lon) / 2) ** 2;
  return 2 * 6_371_000 * Math.asin(Math.sqrt(h));
}
