import { isDeepStrictEqual } from 'node:util';
/**
 * Differential test of the byte-level readers against a reference decoder.
 * fast-check generates entries (records of every msgpack type, every time
 * form, Fluent Bit's metadata form, and broken entries); a small encoder
 * below writes each with headers chosen at random among all valid widths
 * (fixarray, array16, array32, int8 for 1, uint64 for 1, str32 for "a"...).
 * Then, for each:
 * - the transcoder's line, parsed, equals the JSON of msgpackr's decode of
 *   the same bytes, plus the fields egress adds;
 * - admission (`admitEntries`), the entry counter (`countEntries`) and the
 *   reference decode agree on whether the bytes are an event, and the
 *   transcoder writes every admitted event as a line.
 */
import { ProtocolError, EventTime as ProtocolEventTime, admitEntries, countEntries } from '@tributary/forward-protocol';
import fc from 'fast-check';
import { Unpackr, addExtension } from 'msgpackr';
import { DEFAULT_FIELDS, LineWriter, Out, Unencodable, fieldNameBytes, recordFields } from './transcode';

/** What the reference decode makes of an EventTime (ext type 0). */
class EventTimeValue {
  constructor(
    readonly seconds: number,
    readonly nanoseconds: number,
  ) {}
}
addExtension({ type: 0, unpack: (b: Buffer) => new EventTimeValue(b.readUInt32BE(0), b.readUInt32BE(4)) });
const reference = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

// --- the values, as generated ---------------------------------------------

type Value =
  | { t: 'nil' }
  | { t: 'bool'; v: boolean }
  | { t: 'int'; v: number }
  | { t: 'float'; v: number; f32: boolean }
  | { t: 'str'; v: string }
  | { t: 'bin'; v: Uint8Array }
  | { t: 'array'; v: Value[] }
  | { t: 'map'; v: Array<[string, Value]> }
  | { t: 'eventtime'; s: number; ns: number; ext8: boolean };

const key = fc.string({ maxLength: 40, unit: 'binary' }).filter((k) => k !== '__proto__');
const scalar: fc.Arbitrary<Value> = fc.oneof(
  fc.constant<Value>({ t: 'nil' }),
  fc.boolean().map((v): Value => ({ t: 'bool', v })),
  fc.oneof(fc.integer({ min: -40, max: 300 }), fc.maxSafeInteger(), fc.integer()).map((v): Value => ({ t: 'int', v })),
  fc.double().map((v): Value => ({ t: 'float', v, f32: false })),
  fc.float({ noDefaultInfinity: false }).map((v): Value => ({ t: 'float', v, f32: true })),
  fc
    .oneof(fc.string({ maxLength: 40, unit: 'binary' }), fc.string({ minLength: 250, maxLength: 260 }))
    .map((v): Value => ({ t: 'str', v })),
  fc.uint8Array({ maxLength: 40 }).map((v): Value => ({ t: 'bin', v })),
);
const { value } = fc.letrec<{ value: Value; array: Value; map: Value }>((tie) => ({
  value: fc.oneof({ maxDepth: 2, depthSize: 'small', withCrossShrink: true }, scalar, scalar, tie('array'), tie('map')),
  array: fc.array(tie('value'), { maxLength: 4 }).map((v): Value => ({ t: 'array', v })),
  map: fc.array(fc.tuple(key, tie('value')), { maxLength: 4 }).map((v): Value => ({ t: 'map', v })),
}));
const record = fc.array(fc.tuple(key, value), { maxLength: 8 }).map((v): Value => ({ t: 'map', v }));
const eventTime = fc
  .record({ s: fc.nat({ max: 2 ** 32 - 1 }), ns: fc.nat({ max: 999_999_999 }), ext8: fc.boolean() })
  .map((t): Value => ({ t: 'eventtime', ...t }));
const time: fc.Arbitrary<Value> = fc.oneof(
  { weight: 3, arbitrary: eventTime },
  fc.nat({ max: 2 ** 32 - 1 }).map((v): Value => ({ t: 'int', v })),
  fc.double({ min: 0, max: 2 ** 32 - 1, noNaN: true }).map((v): Value => ({ t: 'float', v, f32: false })),
);
/** A valid entry: [time, record] or [[time, metadata], record]. */
const event = fc.tuple(time, fc.option(record, { freq: 3 }), record).map(
  ([t, meta, rec]): Value => ({
    t: 'array',
    v: [meta ? { t: 'array', v: [t, meta] } : t, rec],
  }),
);
/** Anything entry-like, often broken: wrong lengths, out-of-range times, non-map records or metadata. */
const anyTime: fc.Arbitrary<Value> = fc.oneof(
  time,
  scalar,
  fc.record({ s: fc.nat({ max: 2 ** 32 - 1 }), ns: fc.nat(), ext8: fc.boolean() }).map((t): Value => ({ t: 'eventtime', ...t })),
  fc.tuple(eventTime, value).map(([t, m]): Value => ({ t: 'array', v: [t, m] })),
  fc.array(value, { maxLength: 3 }).map((v): Value => ({ t: 'array', v })),
);
const entryLike = fc
  .tuple(anyTime, fc.oneof(record, value), fc.array(value, { maxLength: 1 }), fc.boolean())
  .map(([t, rec, extra, short]): Value => ({ t: 'array', v: short ? [t] : [t, rec, ...extra] }));

// --- the test encoder: any valid width ------------------------------------

/** `n` as `width` big-endian bytes, two's complement. */
function be(n: number, width: number): number[] {
  if (width === 8) return [...Buffer.from(BigInt.asUintN(64, BigInt(n)).toString(16).padStart(16, '0'), 'hex')];
  const out: number[] = [];
  for (let i = width - 1; i >= 0; i--) out.push((n >>> (8 * i)) & 0xff);
  return out;
}

/** The headers a length `n` may have: the fix form (when `fix` holds n), then 8/16/32-bit forms from `wide`. */
function lengthForms(n: number, fix: number | null, fixMax: number, wide: Array<number | null>): number[][] {
  const forms: number[][] = [];
  if (fix !== null && n <= fixMax) forms.push([fix | n]);
  if (wide[0] !== null && n <= 0xff) forms.push([wide[0], n]);
  if (wide[1] !== null && n <= 0xffff) forms.push([wide[1], ...be(n, 2)]);
  forms.push([wide[2] as number, ...be(n, 4)]);
  return forms;
}

/** Every encoding of the int `n`: fixint, and each uint and int width that holds it. */
function intForms(n: number): number[][] {
  const forms: number[][] = [[0xd3, ...be(n, 8)]];
  if (n >= -32 && n <= 0x7f) forms.push(be(n, 1));
  if (n >= 0) {
    if (n <= 0xff) forms.push([0xcc, n]);
    if (n <= 0xffff) forms.push([0xcd, ...be(n, 2)]);
    if (n <= 0xffffffff) forms.push([0xce, ...be(n, 4)]);
    forms.push([0xcf, ...be(n, 8)]);
  }
  if (n >= -0x80 && n <= 0x7f) forms.push([0xd0, ...be(n, 1)]);
  if (n >= -0x8000 && n <= 0x7fff) forms.push([0xd1, ...be(n, 2)]);
  if (n >= -0x80000000 && n <= 0x7fffffff) forms.push([0xd2, ...be(n, 4)]);
  return forms;
}

/** Writes `v` choosing each header among every width that can hold it (`pick(n)` picks one of n). */
function encode(v: Value, pick: (n: number) => number, out: number[]): void {
  const one = (forms: number[][]) => {
    out.push(...forms[pick(forms.length)]);
  };
  switch (v.t) {
    case 'nil':
      out.push(0xc0);
      break;
    case 'bool':
      out.push(v.v ? 0xc3 : 0xc2);
      break;
    case 'int':
      one(intForms(v.v));
      break;
    case 'float': {
      const b = Buffer.alloc(9);
      if (v.f32 && pick(2) === 0) {
        b[0] = 0xca;
        b.writeFloatBE(v.v, 1);
        out.push(...b.subarray(0, 5));
      } else {
        b[0] = 0xcb;
        b.writeDoubleBE(v.v, 1);
        out.push(...b);
      }
      break;
    }
    case 'str': {
      const bytes = Buffer.from(v.v, 'utf8');
      one(lengthForms(bytes.length, 0xa0, 31, [0xd9, 0xda, 0xdb]));
      out.push(...bytes);
      break;
    }
    case 'bin':
      one(lengthForms(v.v.length, null, 0, [0xc4, 0xc5, 0xc6]));
      out.push(...v.v);
      break;
    case 'array':
      one(lengthForms(v.v.length, 0x90, 15, [null, 0xdc, 0xdd]));
      for (const x of v.v) encode(x, pick, out);
      break;
    case 'map':
      one(lengthForms(v.v.length, 0x80, 15, [null, 0xde, 0xdf]));
      for (const [k, x] of v.v) {
        encode({ t: 'str', v: k }, pick, out);
        encode(x, pick, out);
      }
      break;
    case 'eventtime':
      out.push(...(v.ext8 ? [0xc7, 8, 0] : [0xd7, 0]), ...be(v.s, 4), ...be(v.ns, 4));
      break;
  }
}

/** A seeded choice function (mulberry32): the same seed writes the same widths, so a failure reproduces. */
function picker(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) % 4294967296) % n;
  };
}

function bytesOf(v: Value, seed: number): Buffer {
  const out: number[] = [];
  encode(v, picker(seed), out);
  return Buffer.from(out);
}

// --- the reference ----------------------------------------------------------

const isMap = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === 'object' && (x as object).constructor === Object;

/** The JSON egress promises for a decoded value: bin as base64, NaN and ±Inf as null (JSON.stringify's rule). */
function json(x: unknown): unknown {
  // the holder's own value: Buffer's toJSON has already run on the one passed in
  return JSON.parse(
    JSON.stringify(x, function (this: Record<string, unknown>, k, v) {
      const own = this[k];
      return own instanceof Uint8Array ? Buffer.from(own).toString('base64') : v;
    }),
  );
}

interface Verdict {
  /** The grammar (entries.ts): what any reader takes for an entry, ranges aside. */
  grammar: boolean;
  /** The admission rule too: EventTime nanoseconds below 1e9, int and float times in [0, 2^32). */
  admitted: boolean;
  time?: ProtocolEventTime;
  record?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
}

/** The reference's verdict on a decoded value. */
function verdict(decoded: unknown): Verdict {
  const no = { grammar: false, admitted: false };
  if (!Array.isArray(decoded) || decoded.length !== 2) return no;
  let [t, record] = decoded as [unknown, unknown];
  let metadata: Record<string, unknown> | undefined;
  if (Array.isArray(t)) {
    if (t.length !== 2 || Array.isArray(t[0]) || !isMap(t[1])) return no;
    [t, metadata] = t as [unknown, Record<string, unknown>];
  }
  if (!isMap(record)) return no;
  if (t instanceof EventTimeValue) {
    if (t.nanoseconds >= 1e9) return { grammar: true, admitted: false };
    return { grammar: true, admitted: true, time: new ProtocolEventTime(t.seconds, t.nanoseconds), record, metadata };
  }
  if (typeof t !== 'number') return no;
  if (!(t >= 0 && t < 2 ** 32)) return { grammar: true, admitted: false };
  return { grammar: true, admitted: true, time: ProtocolEventTime.fromSeconds(t), record, metadata };
}

const names = fieldNameBytes(DEFAULT_FIELDS);
const fields = recordFields(DEFAULT_FIELDS, 'k', 'app.web');

/** The transcoder's line for the entry, parsed; or the Unencodable it threw. */
function transcode(bytes: Buffer): Record<string, unknown> | Unencodable {
  const out = new Out(1024);
  let next: number;
  try {
    next = new LineWriter(names).write(out, bytes, 0, bytes.length, 0, fields);
  } catch (err) {
    if (err instanceof Unencodable) return err;
    throw err;
  }
  if (next !== bytes.length) throw new Error(`the transcoder stopped at ${next} of ${bytes.length} bytes: ${bytes.toString('hex')}`);
  return JSON.parse(out.buf.toString('utf8', 0, out.pos));
}

/** Whether `check` accepted the bytes as one entry (a ProtocolError: refused). */
function accepted(check: () => number): boolean {
  try {
    const n = check();
    if (n !== 1) throw new Error(`${n} entries counted in one`);
    return true;
  } catch (err) {
    if (err instanceof ProtocolError) return false;
    throw err;
  }
}

// Checks in the properties are plain comparisons, `expect` only on a failure: a jest matcher builds an Error per call.

test('the transcoder writes every event, in any header widths, as the JSON of the reference decode', () => {
  fc.assert(
    fc.property(event, fc.integer(), (v, seed) => {
      const bytes = bytesOf(v, seed);
      const { admitted, time, record, metadata } = verdict(reference.unpack(bytes));
      if (!admitted) throw new Error(`the generator made a non-event: ${bytes.toString('hex')}`);
      const line = transcode(bytes);
      if (line instanceof Unencodable) throw new Error(`dead letter for ${bytes.toString('hex')}: ${line.message}`);
      const added: Record<string, unknown> = { _id: 'k#0', _time: time?.toRfc3339(), _tag: 'app.web' };
      if (metadata && Object.keys(metadata).length > 0) added._metadata = json(metadata);
      const expected = { ...added, ...(json(record) as object) };
      if (!isDeepStrictEqual(line, expected)) expect(line).toEqual(expected);
    }),
    { numRuns: 10_000 },
  );
});

test('admission, the entry counter and the reference decode agree on what is an event; the transcoder writes every one', () => {
  let events = 0;
  fc.assert(
    fc.property(fc.oneof(event, entryLike), fc.integer(), (v, seed) => {
      const bytes = bytesOf(v, seed);
      const ref = verdict(reference.unpack(bytes));
      const seen = { admitEntries: accepted(() => admitEntries(bytes)), countEntries: accepted(() => countEntries(bytes)) };
      const want = { admitEntries: ref.admitted, countEntries: ref.grammar };
      if (!isDeepStrictEqual(seen, want))
        expect({ bytes: bytes.toString('hex'), ...seen }).toEqual({ bytes: bytes.toString('hex'), ...want });
      if (ref.admitted) {
        events++;
        const line = transcode(bytes);
        if (line instanceof Unencodable) throw new Error(`admitted, then dead-lettered: ${bytes.toString('hex')}: ${line.message}`);
      }
    }),
    { numRuns: 15_000 },
  );
  expect(events).toBeGreaterThan(3_000); // both sides of the verdict were exercised
});
