import { decodeEntries, encodeEntry } from '@tributary/forward-protocol';
import { Packr } from 'msgpackr';
import { TIME, chainOf, run, validFilters } from '../__fixtures__/run';
import { luhn } from './mask';

test.each([
  ['card 4111 1111 1111 1111 ok', 'card [REDACTED] ok'],
  ['card 4111-1111-1111-1111', 'card [REDACTED]'],
  ['amex 378282246310005.', 'amex [REDACTED].'],
  ['order 4111111111111112 (fails Luhn)', 'order 4111111111111112 (fails Luhn)'],
  ['phone 0123456789', 'phone 0123456789'],
  ['mail ana.b+x@mail.example.co.uk now', 'mail [REDACTED] now'],
  ['key AKIAIOSFODNN7EXAMPLE used', 'key [REDACTED] used'],
  ['Authorization: Bearer eyJhbGciOi.J9eyJzdWIi-Ij_E2MjM5MDIyfQ== end', 'Authorization: Bearer [REDACTED] end'],
])('builtin patterns: %j → %j', (input, output) => {
  const out = run([{ type: 'mask' }], [{ message: input }]);
  expect(out?.records).toEqual([{ message: output }]);
});

test('every string of the record, nested ones too, unless keys are listed', () => {
  const record = { a: 'x@y.io', b: { c: ['x@y.io', 3] }, n: 4111111111111111 };
  expect(run([{ type: 'mask', builtin: ['email'] }], [record])?.records).toEqual([
    { a: '[REDACTED]', b: { c: ['[REDACTED]', 3] }, n: 4111111111111111 },
  ]);
  expect(run([{ type: 'mask', builtin: ['email'], keys: ['$.b.c'] }], [record])?.records).toEqual([
    { a: 'x@y.io', b: { c: ['[REDACTED]', 3] }, n: 4111111111111111 },
  ]);
});

test('own patterns and replacement; keyed HMAC keeps equal values equal', () => {
  expect(run([{ type: 'mask', builtin: [], patterns: ['secret-\\w+'], replacement: '***' }], [{ m: 'a secret-abc b' }])?.records).toEqual([
    { m: 'a *** b' },
  ]);
  const out = run([{ type: 'mask', builtin: ['email'], hmac_key_env: 'K' }], [{ m: 'x@y.io' }, { m: 'x@y.io' }, { m: 'z@y.io' }], 'a', {
    K: 'k1',
  });
  const [a, b, c] = (out?.records ?? []).map((r) => r.m as string);
  expect(a).toMatch(/^hmac:[0-9a-f]{16}$/);
  expect(a).toBe(b);
  expect(c).not.toBe(a);
});

test('luhn', () => {
  expect(luhn('4111111111111111')).toBe(true);
  expect(luhn('4111 1111 1111 1112')).toBe(false);
  expect(luhn('79927398713')).toBe(false); // valid Luhn, but 11 digits is no card
});

test('check: bad patterns and an unset HMAC key name the filter and key', () => {
  expect(() => validFilters([{ type: 'mask', patterns: ['ok', '(\\w+\\s?)*$'] }])).toThrow(
    /filters\[0\]\.patterns\[1\]: the regex .* catastrophic/,
  );
  // polynomial: allowed in grep (bounded input), refused in mask (a cut input would let a secret through)
  expect(validFilters([{ type: 'grep', regexp: [{ key: 'm', pattern: '\\s*#\\s*$' }] }])).toHaveLength(1);
  expect(() => validFilters([{ type: 'mask', patterns: ['\\s*#\\s*$'] }])).toThrow(/filters\[0\]\.patterns\[0\]: .* polynomial/);
  expect(() => validFilters([{ type: 'mask', hmac_key_env: 'NOPE_K' }])).toThrow(
    /filters\[0\]\.hmac_key_env: the environment variable NOPE_K/,
  );
});

test('a record msgpackr cannot pack again (keys constructor and toJSON) passes as it came, counted unreadable; the batch goes on', () => {
  const head = encodeEntry(TIME, {});
  const poison = new Packr({ useRecords: false }).pack(
    new Map<string, unknown>([
      ['constructor', 1],
      ['toJSON', 2],
      ['message', 'mail x@y.io'],
    ]),
  );
  const entries = Buffer.concat([
    encodeEntry(TIME, { message: 'mail a@b.io' }),
    Buffer.concat([head.subarray(0, head.length - 1), poison]),
    encodeEntry(TIME, { message: 'mail c@d.io' }),
  ]);
  const chain = chainOf([{ type: 'mask', builtin: ['email'] }]);
  const out = chain.run('app.web', entries);
  const records = decodeEntries(out?.entries ?? Buffer.alloc(0)).map((e) => e.record);
  expect(records).toEqual([
    { message: 'mail [REDACTED]' },
    { constructor: 1, toJSON: 2, message: 'mail x@y.io' }, // as it came: the filter's change could not be written
    { message: 'mail [REDACTED]' },
  ]);
  expect(out?.indexes).toEqual([0, 1, 2]);
  expect(chain.totals().unreadable).toBe(1);
});
