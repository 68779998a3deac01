import { ConfigError, type LogReader, partConfigSpec, silentLogger, validateConfig } from '@tributary/core';
import type { LineSink, ObjectSink } from '@tributary/core';
import { type EgressConfig, egressOptions, egressSchema } from './config';
import type { EgressMetrics } from './egress-worker';
import { DEFAULT_FIELDS } from './transcode';

const egress = (e: Record<string, unknown>) =>
  validateConfig(partConfigSpec<{ egress: EgressConfig }>('egress', egressSchema), { egress: e }).egress;

const objectSink: ObjectSink = { kind: 'objects', name: 'lake', gzipLevel: 1, put: async () => {}, close: async () => {} };
const lineSink: LineSink = { kind: 'lines', name: 'hose', put: async () => {}, close: async () => {} };
const reader = { poll: async () => [] } as unknown as LogReader;
const metrics = {} as EgressMetrics;
const parts = {
  reader,
  sinks: new Map([
    ['lake', objectSink],
    ['hose', lineSink],
  ] as const),
  fields: DEFAULT_FIELDS,
  logger: silentLogger,
  metrics,
};

test('egressOptions maps every egress key to its worker option and resolves routes to the sinks built', async () => {
  const options = egressOptions(
    egress({
      group: 'g1',
      batch_records: 7,
      max_wait_ms: 33,
      encoder_threads: 0,
      objects: { bytes: 4096, age_ms: 15, max_tags: 3 },
      retry_initial_ms: 5,
      retry_max_ms: 50,
      routes: [
        { match: 'app.**', sinks: ['lake', 'hose'] },
        { match: '**', sinks: ['hose'] },
      ],
    }),
    parts,
  );
  try {
    expect(options.pollRecords).toBe(7);
    expect(options.maxWaitMs).toBe(33);
    expect(options.objects).toEqual({ bytes: 4096, ageMs: 15, maxTags: 3 });
    expect(options.backoff).toEqual({ initialMs: 5, maxMs: 50 });
    expect(options.routes).toEqual([
      { match: 'app.**', sinks: [objectSink, lineSink] },
      { match: '**', sinks: [lineSink] },
    ]);
    expect(options.routes[0].sinks[0]).toBe(objectSink);
    expect(options.encoder.threads).toBe(0);
    expect(options.reader).toBe(reader);
    expect(options.fields).toBe(DEFAULT_FIELDS);
    expect(options.metrics).toBe(metrics);
  } finally {
    await options.encoder.close();
  }
});

test("the schema's defaults map to the worker's defaults", async () => {
  const options = egressOptions(egress({ encoder_threads: 0, routes: [{ match: '**', sinks: ['lake'] }] }), parts);
  try {
    expect(options.pollRecords).toBe(256);
    expect(options.maxWaitMs).toBe(500);
    expect(options.objects).toEqual({ bytes: 33554432, ageMs: 2000, maxTags: 128 });
    expect(options.backoff).toEqual({ initialMs: 200, maxMs: 30000 });
  } finally {
    await options.encoder.close();
  }
});

test('a route naming a sink that was not built is a ConfigError naming it', () => {
  expect(() => egressOptions(egress({ routes: [{ match: '**', sinks: ['gone'] }] }), parts)).toThrow(ConfigError);
  expect(() => egressOptions(egress({ routes: [{ match: '**', sinks: ['gone'] }] }), parts)).toThrow(
    'egress.routes: no sink is named "gone"',
  );
});
