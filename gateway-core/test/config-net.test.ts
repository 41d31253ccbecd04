// The network value parsers other modules share with the config schemas.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  NetParseError, cidrContains, ipv4ToNumber, isValidIfname, numberToIpv4, parseCidr, parseHostPort,
} from '../src/config/index.js';

describe('parseCidr', () => {
  test('returns network as an unsigned number and the prefix', () => {
    assert.deepEqual(parseCidr('10.0.0.0/24'), { address: '10.0.0.0', network: 0x0a000000, prefix: 24 });
    assert.deepEqual(parseCidr('0.0.0.0/0'), { address: '0.0.0.0', network: 0, prefix: 0 });
    assert.deepEqual(parseCidr('255.255.255.255/32'), { address: '255.255.255.255', network: 0xffffffff, prefix: 32 });
    assert.ok(parseCidr('192.168.1.0/24').network > 0, 'unsigned, not negative');
  });

  test('host bits set: error with the network, unless allowed', () => {
    assert.throws(() => parseCidr('10.0.0.1/24'), (e: unknown) =>
      e instanceof NetParseError && e.reason === 'host bits set, did you mean 10.0.0.0/24?' && e.message.startsWith('"10.0.0.1/24": '));
    assert.deepEqual(parseCidr('10.0.0.1/24', { allowHostBits: true }), { address: '10.0.0.1', network: 0x0a000000, prefix: 24 });
  });

  test('rejects malformed input', () => {
    for (const bad of ['10.0.0.0', '10.0.0/8', '10.0.0.0.0/8', '10.0.0.256/32', '10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/', 'a.b.c.d/8', ' 10.0.0.0/8', '010.0.0.0/8', '10.0.0.0/08']) {
      assert.throws(() => parseCidr(bad), NetParseError, bad);
    }
  });

  test('cidrContains', () => {
    const c = parseCidr('100.64.0.0/10');
    assert.ok(cidrContains(c, ipv4ToNumber('100.127.255.255')));
    assert.ok(!cidrContains(c, ipv4ToNumber('100.128.0.0')));
    assert.ok(cidrContains(parseCidr('0.0.0.0/0'), ipv4ToNumber('203.0.113.9')));
    assert.equal(numberToIpv4(ipv4ToNumber('203.0.113.9')), '203.0.113.9');
  });
});

describe('parseHostPort', () => {
  test('host names, IPv4 and bracketed IPv6', () => {
    assert.deepEqual(parseHostPort('cloud.example.net:7443'), { host: 'cloud.example.net', port: 7443 });
    assert.deepEqual(parseHostPort('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
    assert.deepEqual(parseHostPort('[::1]:9464'), { host: '::1', port: 9464 });
    assert.deepEqual(parseHostPort('localhost:65535'), { host: 'localhost', port: 65535 });
  });

  test('rejects malformed input', () => {
    for (const bad of ['cloud', ':7443', 'cloud:', 'cloud:65536', 'cloud:-1', 'cloud:07', '::1:80', '[::1]80', '[nope]:80', 'bad host:80', '1.2.3:80', '300.1.1.1:80']) {
      assert.throws(() => parseHostPort(bad), NetParseError, bad);
    }
  });
});

describe('isValidIfname', () => {
  test('Linux rules', () => {
    for (const ok of ['eth0', 'wwan0', 'braid0', 'a', 'veth-edge.carr1', 'x'.repeat(15)]) assert.ok(isValidIfname(ok), ok);
    for (const bad of ['', 'x'.repeat(16), 'a/b', 'a:b', 'a b', 'a\tb', '.', '..', 42, null]) assert.ok(!isValidIfname(bad), String(bad));
  });
});
