// The --trace parser reads what `ss -tinH` prints for a TCP sender (iproute2 6.1, BBR and
// CUBIC lines as printed on this machine).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSs } from './trace.js';

const BBR = `ESTAB 0       2832511          10.40.0.2:5301          10.10.0.2:43210 
\t bbr wscale:10,10 rto:204 rtt:150.5/20.1 mss:1448 pmtu:1500 rcvmss:536 advmss:1448 cwnd:166 ssthresh:8 bytes_sent:3578548187 bytes_retrans:231689 bytes_acked:3578054567 segs_out:57000 segs_in:23789 data_segs_out:56998 bbr:(bw:10500000bps,mrtt:54.1,pacing_gain:1.25,cwnd_gain:2) send 119740342bps lastsnd:4 lastrcv:1500 lastack:4 pacing_rate 13218777bps delivery_rate 9261206bps delivered:56995 busy:1488ms rwnd_limited:900ms(60.5%) unacked:92 retrans:0/14 dsack_dups:5 rcv_space:65495 rcv_ssthresh:65495 notsent:2570579 minrtt:54.1 snd_wnd:312320
ESTAB 0       0          10.40.0.2:5300          10.10.0.2:43200 
\t cubic wscale:7,7 rto:208 rtt:3.2/1.1 mss:1448 cwnd:10 bytes_acked:1234 unacked:0 minrtt:2.5 delivery_rate 1.5Mbps
`;

test('parseSs: one sample per connection, with the sender\'s window, RTT, retransmissions and its congestion control\'s view', () => {
  const [a, b] = parseSs(BBR);
  assert.deepEqual(a, {
    flow: '10.40.0.2:5301 -> 10.10.0.2:43210', cwnd: 166, rttMs: 150.5, retrans: 14, unacked: 92, deliveryMbps: 9.26,
    bytesAcked: 3578054567, cc: 'bbr', minRttMs: 54.1, pacingMbps: 13.22, bbrBwMbps: 10.5, rwndLimitedPct: 60.5, sndbufLimitedPct: null,
  });
  assert.equal(b?.cc, 'cubic');
  assert.equal(b?.deliveryMbps, 1.5);
  assert.equal(b?.retrans, null, 'absent fields are null, not 0');
  assert.deepEqual(parseSs(''), []);
});
