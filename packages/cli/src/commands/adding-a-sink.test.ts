/**
 * Adding a sink is one folder and one registry line: a sink that exists only
 * for tests (packages/sinks/src/__fixtures__/memory/) is registered
 * here, in one line, and is then validated with its own keys, listed by
 * check-config, documented in the configuration reference, and passes the
 * sink contract suite like the real sinks.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type SinkRegistry, sinkRegistry } from '@tributary/sinks';
import { memorySink } from '../../../sinks/src/__fixtures__/memory/config';
import { failing, stores } from '../../../sinks/src/__fixtures__/memory/sink';
import { sinkContract } from '../../../sinks/src/__fixtures__/sink-contract';
import { renderConfigReference } from '../docs/config-reference';
import { checkConfig } from './check-config';

const registry: SinkRegistry = [...sinkRegistry, memorySink];

function check(yaml: string, sinks: SinkRegistry) {
  const dir = mkdtempSync(join(tmpdir(), 'trb-add-sink-'));
  const file = join(dir, 'agg.yaml');
  writeFileSync(file, yaml);
  const out: string[] = [];
  const log = jest.spyOn(console, 'log').mockImplementation((l: string) => {
    out.push(l);
  });
  const error = jest.spyOn(console, 'error').mockImplementation((l: string) => {
    out.push(l);
  });
  try {
    return { code: checkConfig(file, 'aggregator', undefined, sinks), out: out.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
    rmSync(dir, { recursive: true, force: true });
  }
}

const config = (sink: string) => `egress:\n  routes: [{ match: '**', sinks: [mem] }]\nsinks:\n  - ${sink}\n`;

test('the registered sink is valid in a config and listed by check-config', () => {
  const r = check(config('{ name: mem, type: memory, store: s }'), registry);
  expect(r.out).toContain('valid aggregator configuration');
  expect(r.out).toContain('sinks: mem (memory); sink types: file, aws_s3, aws_firehose, memory.');
  expect(r.code).toBe(0);
});

test('its unknown keys and the keys of other types are rejected with their path', () => {
  const r = check(config('{ name: mem, type: memory, store: s, bucket: b, colour: red }'), registry);
  expect(r.code).toBe(1);
  expect(r.out).toContain('sinks[0].bucket: unknown key');
  expect(r.out).toContain('sinks[0].colour: unknown key');
  const missing = check(config('{ name: mem, type: memory }'), registry);
  expect(missing.out).toContain('sinks[0].store: required key is missing');
});

test('without its registry line the type is unknown', () => {
  const r = check(config('{ name: mem, type: memory, store: s }'), sinkRegistry);
  expect(r.code).toBe(1);
  expect(r.out).toContain('sinks[0].type: must be one of "file", "aws_s3", "aws_firehose"');
});

test('the configuration reference documents it from its spec', () => {
  const text = renderConfigReference(registry);
  expect(text).toContain('### `memory`');
  expect(text).toContain('Test only: objects kept in a map in this process.');
  expect(text).toMatch(/\| `sinks\[\]\.store` \(required\) \| string \| {2}\| Name of the in-process store the objects go to\. \|/);
  expect(text).toContain('`"file"` \\| `"aws_s3"` \\| `"aws_firehose"` \\| `"memory"`');
  expect(renderConfigReference()).not.toContain('### `memory`');
});

let stored = 0;
sinkContract(
  {
    spec: memorySink,
    async start() {
      const store = `contract-${++stored}`;
      return {
        config: { name: 'contract', type: 'memory', store },
        objects: async () => new Map(stores.get(store)),
        fail: async () => {
          failing.add(store);
        },
        restore: async () => {
          failing.delete(store);
        },
        stop: async () => {
          stores.delete(store);
        },
      };
    },
  },
  registry,
);
