/**
 * Shared-key handshake (Forward Protocol v1, "Handshake Messages").
 *
 *   HELO = [ "HELO", { nonce: bin16, auth: bin16 | "", keepalive: bool } ]        server → client
 *   PING = [ "PING", client_hostname, salt, hex(sha512(salt + client_hostname + nonce + shared_key)),
 *            username, hex(sha512(auth + username + password)) ]                   client → server
 *   PONG = [ "PONG", bool, reason, server_hostname,
 *            hex(sha512(salt + server_hostname + nonce + shared_key)) ]             server → client
 *
 * `+` is raw byte concatenation. Every str field is kept as bytes: Fluent Bit's
 * salt is a str holding 16 raw, non-UTF-8 bytes, and decoding it as text
 * would change the digest.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import { Packr } from 'msgpackr';
import { clip } from './admission';
import { strHeader } from './encoder';
import { ProtocolError, ProtocolErrorCode, shapeError } from './errors';
import { type RawValue, readRaw } from './msgpack-scan';

const packr = new Packr({ useRecords: false, variableMapSize: true });

export type Bytes = Buffer | string;

function bytes(v: Bytes): Buffer {
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
}

export function sha512Hex(...parts: Bytes[]): string {
  const h = createHash('sha512');
  for (const p of parts) h.update(bytes(p));
  return h.digest('hex');
}

function digestEquals(a: Buffer | string, b: string): boolean {
  const x = bytes(a);
  const y = Buffer.from(b, 'latin1');
  return x.length === y.length && timingSafeEqual(x, y);
}

function asArray(frame: Buffer, name: string): RawValue[] {
  const { value } = readRaw(frame, 0, frame.length);
  if (!Array.isArray(value) || !Buffer.isBuffer(value[0]) || value[0].toString('latin1') !== name) {
    throw shapeError(`expected a ${name} message`);
  }
  return value;
}

function field(v: RawValue | undefined, what: string): Buffer {
  if (!Buffer.isBuffer(v)) throw shapeError(`${what} is not a string`);
  return v;
}

// --- HELO ---------------------------------------------------------------

export interface Helo {
  nonce: Buffer;
  /** Salt for user authentication; empty when the server does not require users. */
  auth: Buffer;
  keepalive: boolean;
}

export function createHelo(userAuth: boolean, keepalive = true): Helo {
  return { nonce: randomBytes(16), auth: userAuth ? randomBytes(16) : Buffer.alloc(0), keepalive };
}

export function encodeHelo(helo: Helo): Buffer {
  // auth is bin16 with user auth, or the empty str "" without (what Fluentd sends).
  return packr.pack(['HELO', { nonce: helo.nonce, auth: helo.auth.length ? helo.auth : '', keepalive: helo.keepalive }]);
}

export function parseHelo(frame: Buffer): Helo {
  const msg = asArray(frame, 'HELO');
  const opts = msg[1];
  if (!(opts instanceof Map)) throw shapeError('HELO options are not a map');
  const nonce = field(opts.get('nonce'), 'HELO nonce');
  const auth = opts.get('auth');
  return { nonce, auth: Buffer.isBuffer(auth) ? auth : Buffer.alloc(0), keepalive: opts.get('keepalive') !== false };
}

// --- PING ---------------------------------------------------------------

export interface Ping {
  hostname: Buffer;
  salt: Buffer;
  digest: Buffer;
  username: Buffer;
  passwordDigest: Buffer;
}

export interface ClientCredentials {
  hostname: string;
  sharedKey: string;
  username?: string;
  password?: string;
}

export function encodePing(helo: Helo, creds: ClientCredentials, salt: Buffer = Buffer.from(randomBytes(16).toString('hex'))): Buffer {
  const digest = sha512Hex(salt, creds.hostname, helo.nonce, creds.sharedKey);
  const username = creds.username ?? '';
  const passwordDigest = helo.auth.length ? sha512Hex(helo.auth, username, creds.password ?? '') : '';
  return Buffer.concat([
    Buffer.from([0x96]),
    packr.pack('PING'),
    packr.pack(creds.hostname),
    strHeader(salt.length),
    salt,
    packr.pack(digest),
    packr.pack(username),
    packr.pack(passwordDigest),
  ]);
}

export function parsePing(frame: Buffer): Ping {
  const msg = asArray(frame, 'PING');
  if (msg.length !== 6 && msg.length !== 4) throw shapeError(`PING has ${msg.length} elements (expected 6)`);
  return {
    hostname: field(msg[1], 'PING hostname'),
    salt: field(msg[2], 'PING salt'),
    digest: field(msg[3], 'PING digest'),
    username: msg.length === 6 ? field(msg[4], 'PING username') : Buffer.alloc(0),
    passwordDigest: msg.length === 6 ? field(msg[5], 'PING password digest') : Buffer.alloc(0),
  };
}

// --- server-side verification -------------------------------------------

export interface UserEntry {
  username: string;
  password: string;
}

export interface ClientEntry {
  /** Exact source IP address. */
  host?: string;
  /** Source network in CIDR form, e.g. 10.0.0.0/8. */
  network?: string;
  /** Shared key for this client, overriding the server's. */
  sharedKey?: string;
  /** Usernames this client may authenticate as (all users when absent). */
  users?: string[];
}

export interface ServerSecurity {
  selfHostname: string;
  sharedKey: string;
  /** Require a username/password from the `users` list. */
  userAuth?: boolean;
  users?: UserEntry[];
  /** Accept sources not listed in `clients` (default true, as in Fluentd). */
  allowAnonymousSource?: boolean;
  clients?: ClientEntry[];
}

export type PingVerdict = { ok: true; sharedKey: string } | { ok: false; reason: string };

function findClient(security: ServerSecurity, address: string): ClientEntry | undefined {
  const clients = security.clients ?? [];
  const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
  return clients.find((c) => {
    if (c.host !== undefined) return c.host === address;
    if (c.network !== undefined) {
      const [net, prefix] = c.network.split('/');
      const list = new BlockList();
      list.addSubnet(net, Number(prefix), isIP(net) === 6 ? 'ipv6' : 'ipv4');
      return list.check(address, family);
    }
    return false;
  });
}

/** Checks a PING against the server's keys, users and client list. */
export function verifyPing(ping: Ping, helo: Helo, security: ServerSecurity, remoteAddress: string): PingVerdict {
  const address = remoteAddress.startsWith('::ffff:') ? remoteAddress.slice(7) : remoteAddress;
  const client = findClient(security, address);
  if (!client && security.clients?.length && security.allowAnonymousSource === false) {
    return { ok: false, reason: `source ${address} is not in the allowed clients list` };
  }
  const sharedKey = client?.sharedKey ?? security.sharedKey;
  if (!digestEquals(ping.digest, sha512Hex(ping.salt, ping.hostname, helo.nonce, sharedKey))) {
    return { ok: false, reason: 'shared_key mismatch' };
  }
  if (security.userAuth) {
    const username = ping.username.toString('utf8');
    const user = (security.users ?? []).find((u) => u.username === username);
    if (!user || !digestEquals(ping.passwordDigest, sha512Hex(helo.auth, user.username, user.password))) {
      return { ok: false, reason: 'username/password mismatch' };
    }
    if (client?.users && !client.users.includes(username)) {
      return { ok: false, reason: `user ${clip(username, 100)} is not allowed from ${address}` };
    }
  }
  return { ok: true, sharedKey };
}

// --- PONG ---------------------------------------------------------------

export function encodePong(verdict: PingVerdict, ping: Ping | null, helo: Helo, selfHostname: string): Buffer {
  if (!verdict.ok || !ping) {
    return packr.pack(['PONG', false, verdict.ok ? 'invalid ping message' : verdict.reason, '', '']);
  }
  return packr.pack(['PONG', true, '', selfHostname, sha512Hex(ping.salt, selfHostname, helo.nonce, verdict.sharedKey)]);
}

/** The PONG a server sends when data arrives before a PING. */
export const INVALID_PING_PONG = packr.pack(['PONG', false, 'invalid ping message', '', '']);

export interface Pong {
  ok: boolean;
  reason: string;
  hostname: Buffer;
  digest: Buffer;
}

export function parsePong(frame: Buffer): Pong {
  const msg = asArray(frame, 'PONG');
  if (msg.length !== 5) throw shapeError(`PONG has ${msg.length} elements (expected 5)`);
  return {
    ok: msg[1] === true,
    reason: Buffer.isBuffer(msg[2]) ? msg[2].toString('utf8') : '',
    hostname: field(msg[3], 'PONG hostname'),
    digest: field(msg[4], 'PONG digest'),
  };
}

/** Client side: checks the server's answer; throws TRB_FWD_AUTH when it must not be trusted. */
export function verifyPong(pong: Pong, helo: Helo, salt: Buffer, creds: ClientCredentials): void {
  const fail = (why: string) => new ProtocolError(ProtocolErrorCode.Auth, `Handshake failed: ${why}.`);
  if (!pong.ok) throw fail(`the server refused the PING (${clip(pong.reason)})`);
  if (pong.hostname.toString('utf8') === creds.hostname) {
    throw fail(`the server hostname equals this client's (${creds.hostname}): invalid configuration`);
  }
  if (!digestEquals(pong.digest, sha512Hex(salt, pong.hostname, helo.nonce, creds.sharedKey))) {
    throw fail('the PONG digest does not match the shared key');
  }
}
