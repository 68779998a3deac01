import { keyPath, validateConfig } from './config';
import { ConfigError } from './errors';

test('a JSON Pointer becomes the key path the reference uses: indexes in brackets, escapes decoded', () => {
  expect(keyPath('/sinks/0/bucket')).toBe('sinks[0].bucket');
  expect(keyPath('/egress/routes/12/sinks/3')).toBe('egress.routes[12].sinks[3]');
  expect(keyPath('/log')).toBe('log');
  expect(keyPath('/a~1b/c~0d')).toBe('a/b.c~d');
});

test('every problem is reported with its path, and defaults are filled in and frozen', () => {
  const spec = {
    name: 'keypath-test',
    schema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        items: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['name'],
            properties: { name: { type: 'string' }, size: { type: 'integer', default: 3 } },
          },
        },
      },
    },
  };
  const err = (() => {
    try {
      validateConfig(spec, { items: [{ name: 'a' }, { nme: 'b' }] });
    } catch (e) {
      return e as ConfigError;
    }
    return null;
  })();
  expect(err).toBeInstanceOf(ConfigError);
  expect(err?.problems).toEqual(['items[1].name: required key is missing', 'items[1].nme: unknown key']);
  const ok = validateConfig<{ items: Array<{ name: string; size: number }> }>(spec, { items: [{ name: 'a' }] });
  expect(ok.items[0].size).toBe(3);
  expect(Object.isFrozen(ok.items[0])).toBe(true);
});
