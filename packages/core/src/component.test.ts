import { type ComponentSpec, createPart, findSpec } from './component';
import { ConfigError } from './errors';

const made: string[] = [];
const spec = (type: string): ComponentSpec<{ type: string; size?: number }, { prefix: string }, string> => ({
  type,
  schema: { type: 'object', description: type },
  create: (config, ctx) => {
    made.push(type);
    return `${ctx.prefix}${config.type}:${config.size ?? 0}`;
  },
});
const registry = [spec('a'), spec('b')];

test("a part is built by the spec its config's own type names, with that config", () => {
  expect(createPart(registry, { type: 'b', size: 3 }, { prefix: '>' }, 'thing')).toBe('>b:3');
  expect(createPart(registry, { type: 'a' }, { prefix: '' }, 'thing')).toBe('a:0');
  expect(made).toEqual(['b', 'a']);
});

test('a type the registry does not hold is a ConfigError naming the kind and the known types', () => {
  expect(() => createPart(registry, { type: 'c' }, { prefix: '' }, 'thing')).toThrow(ConfigError);
  expect(() => findSpec(registry, 'c', 'thing')).toThrow('No thing type "c" is registered (known: a, b).');
});
