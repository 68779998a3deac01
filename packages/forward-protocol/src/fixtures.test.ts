import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeAck } from './ack';
import { FrameDecoder } from './decoder';
import { decodeEntries } from './entries';
import { encodePong, parseHelo, parsePing, parsePong, sha512Hex, verifyPing } from './handshake';
import { parseRequest } from './request';

const dir = join(__dirname, '..', 'fixtures');
const read = (name: string) => readFileSync(join(dir, name));
const frames = (name: string) => new FrameDecoder().push(read(name));

/** The three events every capture in the main table carries (fixtures README). */
const EXPECTED = [1, 2, 3].map((n) => ({
  seconds: 1700000000 + n,
  nanoseconds: n * 100000001,
  record: { msg: `hello ${n}`, n },
}));

function expectThreeEvents(entries: Buffer) {
  const events = decodeEntries(entries);
  expect(events.map((e) => ({ seconds: e.time.seconds, nanoseconds: e.time.nanoseconds, record: e.record }))).toEqual(EXPECTED);
  return events;
}

describe('captured requests decode to the stated content', () => {
  test.each([
    ['fluentd-packed.bin', 'test.packed', 'packed'],
    ['fluentd-packed-ack.bin', 'test.ack', 'packed'],
    ['fluentd-gzip.bin', 'test.gzip', 'compressed'],
    ['fluentbit-forward.bin', 'fb.default', 'forward'],
    ['fluentbit-forward-ack.bin', 'fb.ack', 'forward'],
    ['fluentbit-gzip.bin', 'fb.gzip', 'compressed'],
  ])('%s', (file, tag, mode) => {
    const all = frames(file);
    expect(all).toHaveLength(1);
    const chunk = parseRequest(all[0]);
    expect(chunk.tag).toBe(tag);
    expect(chunk.mode).toBe(mode);
    expect(chunk.count).toBe(3);
    expectThreeEvents(chunk.entries);
  });

  test('fluentd-gzip.bin holds two gzip members in a str32 and inflates to all three events', () => {
    const raw = read('fluentd-gzip.bin');
    expect(raw.indexOf(Buffer.from([0xdb]))).toBeGreaterThan(0);
    let members = 0;
    for (let i = raw.indexOf(Buffer.from([0x1f, 0x8b, 0x08])); i >= 0; i = raw.indexOf(Buffer.from([0x1f, 0x8b, 0x08]), i + 1)) members++;
    expect(members).toBe(2);
    expect(parseRequest(frames('fluentd-gzip.bin')[0]).count).toBe(3);
  });

  test('fluentbit-metadata.bin keeps the [EventTime, metadata] form', () => {
    const chunk = parseRequest(frames('fluentbit-metadata.bin')[0]);
    expect(chunk.tag).toBe('fb.meta');
    const events = expectThreeEvents(chunk.entries);
    expect(events.map((e) => e.metadata)).toEqual([{ meta: 'm1' }, { meta: 'm2' }, {}]);
  });

  test('Fluent Bit chunk ids are sha512 of the entries: pass-through keeps the entries byte for byte', () => {
    const chunk = parseRequest(frames('fluentbit-forward-ack.bin')[0]);
    const id = createHash('sha512').update(chunk.entries).digest().subarray(0, 16).toString('base64');
    expect(chunk.chunkId).toBe('x1TQ5xMxn6bp1Q3X4AWZog==');
    expect(id).toBe(chunk.chunkId);
  });

  test('older probe: inforward-probe.bin', () => {
    const chunk = parseRequest(frames('inforward-probe.bin')[0]);
    expect(chunk.tag).toBe('app.probe');
    const [event] = decodeEntries(chunk.entries);
    expect(event.time).toMatchObject({ seconds: 1795000000, nanoseconds: 5 });
    expect(event.record).toEqual({ msg: 'probe', n: 5 });
  });
});

describe('acks equal the captured replies byte for byte', () => {
  test.each([
    ['fluentd-packed-ack.bin', 'fluentd-packed-ack.reply.bin', 'Zg3WwVGt4GHKK75cEkwQxQ==\n'],
    ['fluentd-gzip.bin', 'fluentd-gzip.reply.bin', 'Zg3XW+kUHyx5q1RVoESp8w==\n'],
    ['fluentbit-forward-ack.bin', 'fluentbit-forward-ack.reply.bin', 'x1TQ5xMxn6bp1Q3X4AWZog=='],
    ['inforward-request.bin', 'inforward-fluentd-ack.bin', 'abc'],
    ['inforward-request.bin', 'inforward-fluentbit-ack.bin', 'abc'],
    ['inforward-probe.bin', 'inforward-fluentd-ack.reply.bin', 'abc'],
    ['inforward-probe.bin', 'inforward-fluentbit-ack.reply.bin', 'abc'],
  ])('%s → %s', (req, reply, id) => {
    const chunk = parseRequest(frames(req)[0]);
    expect(chunk.chunkId).toBe(id);
    expect(encodeAck(chunk.ack as Buffer).equals(read(reply))).toBe(true);
  });

  test('requests without a chunk option get no ack', () => {
    for (const f of ['fluentd-packed.bin', 'fluentbit-forward.bin', 'fluentbit-gzip.bin', 'fluentbit-metadata.bin']) {
      expect(parseRequest(frames(f)[0]).ack).toBeUndefined();
    }
  });
});

describe('captured handshakes verify', () => {
  test.each([
    ['fluentd-handshake-client.bin', 'fluentd-handshake-server.bin', 'secret', 'server.example', 'test.secure'],
    ['fluentbit-handshake-client.bin', 'fluentbit-handshake-server.bin', 'secret', 'server.example', 'fb.secure'],
    ['fluentd-handshake.bin', 'fluentd-handshake.reply.bin', 'secret123', 'aggregator.local', 'app.fluentd'],
    ['fluentbit-handshake.bin', 'fluentbit-handshake.reply.bin', 'secret123', 'aggregator.local', 'app.fluentbit'],
  ])('%s with %s', (clientFile, serverFile, sharedKey, serverHost, tag) => {
    const [heloFrame, pongFrame, ackFrame] = frames(serverFile);
    const [pingFrame, dataFrame] = frames(clientFile);
    const helo = parseHelo(heloFrame);
    expect(helo.nonce).toHaveLength(16);
    expect(helo.auth).toHaveLength(16);
    const ping = parsePing(pingFrame);
    // PING digest = sha512(salt + client_hostname + nonce + shared_key), salt kept as raw bytes
    expect(ping.digest.toString()).toBe(sha512Hex(ping.salt, ping.hostname, helo.nonce, sharedKey));
    // user digest with empty username and password
    expect(ping.passwordDigest.toString()).toBe(sha512Hex(helo.auth, '', ''));
    const verdict = verifyPing(ping, helo, { selfHostname: serverHost, sharedKey }, '127.0.0.1');
    expect(verdict).toEqual({ ok: true, sharedKey });
    expect(verifyPing(ping, helo, { selfHostname: serverHost, sharedKey: 'wrong' }, '127.0.0.1').ok).toBe(false);
    // our PONG for this PING equals the captured one byte for byte
    expect(encodePong(verdict, ping, helo, serverHost).equals(pongFrame)).toBe(true);
    expect(parsePong(pongFrame)).toMatchObject({ ok: true, reason: '' });
    const chunk = parseRequest(dataFrame);
    expect(chunk.tag).toBe(tag);
    expect(chunk.count).toBe(3);
    expect(encodeAck(chunk.ack as Buffer).equals(ackFrame)).toBe(true);
  });

  test('Fluent Bit salt is 16 raw non-UTF-8 bytes and is hashed as bytes', () => {
    const ping = parsePing(frames('fluentbit-handshake-client.bin')[0]);
    expect(ping.salt.toString('hex')).toBe('651abe04aa160499a16296cb5eb143e8');
    expect(ping.digest.toString()).toBe(
      '904385f7ac82a46c060b2b3e06ce4d1b92f677289811c8bb605a50e3acfe41c8bbca11a625b5117ff9ee29320a042e87c1ec3ddf0b5554f67167a8baba23aae8',
    );
  });
});
