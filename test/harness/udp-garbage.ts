// Sends COUNT random datagrams (random lengths 0..1500, a third with our version byte and a
// random session id so they get past the first checks) to HOST:PORT, then prints "sent N".
// Usage: udp-garbage.ts HOST PORT COUNT [SEED]
import dgram from 'node:dgram';
import { prng } from '../../gateway-core/src/sim/link.js';

const [host = '127.0.0.1', portS = '7000', countS = '1000', seedS = '1'] = process.argv.slice(2);
const port = Number(portS);
const count = Number(countS);
const rand = prng(Number(seedS));
const sock = dgram.createSocket('udp4');
let sent = 0;
function burst(): void {
  for (let k = 0; k < 500 && sent < count; k++, sent++) {
    const len = Math.floor(rand() * 1500);
    const d = Buffer.allocUnsafe(len);
    for (let j = 0; j < len; j++) d[j] = Math.floor(rand() * 256);
    if (sent % 3 === 0 && len > 0) d[0] = 0x11 + (sent % 3);
    sock.send(d, port, host);
  }
  if (sent < count) setTimeout(burst, 2);
  else setTimeout(() => { console.log(`sent ${sent}`); sock.close(); }, 200);
}
burst();
