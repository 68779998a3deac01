import { request } from 'node:http';
import { ConfigError, type ConfigSchema, silentLogger, validateConfig } from '@tributary/core';
import type { ForwardChunk } from '@tributary/forward-protocol';
import { forwardInputSchema } from './forward/config';
import { forwardInput } from './forward/spec';
import { httpInputSchema } from './http/config';
import { httpInput } from './http/spec';
import { createInputs, inputProperties, inputRegistry } from './registry';
import { withDefaults } from './spec';
import { tailInputSchema } from './tail/config';

let names = 0;
/** A config spec under a fresh name (ajv caches compiled schemas by name). */
function spec<T>(schema: object): ConfigSchema<T> {
  return { name: `inputs-test-${names++}`, schema: schema as Record<string, unknown> };
}

function problems(schema: object, input: unknown): string[] {
  try {
    validateConfig(spec(schema), input);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems ?? [];
    throw err;
  }
  return [];
}

/** A role's config schema built the way a role builds it. */
const aggregatorLike = {
  type: 'object',
  additionalProperties: false,
  properties: inputProperties({
    forward: {
      bind: { default: '0.0.0.0' },
      max_pending_batches: { default: 8, description: 'Deep enough to overlap fsyncs.' },
      max_pending_bytes: { default: 67108864 },
    },
    http: { enabled: { default: false } },
  }),
};

test('the registry lists forward, http and tail, each under its config key with its own schema', () => {
  expect(inputRegistry.map((s) => s.type)).toEqual(['forward', 'http', 'tail']);
  expect(Object.keys(inputProperties())).toEqual(['forward', 'http', 'tail']);
  expect(inputProperties().forward).toEqual(forwardInputSchema);
  expect(inputProperties().http).toEqual(httpInputSchema);
  expect(inputProperties().tail).toEqual(tailInputSchema);
});

/** An input's schema under its config key, as a role holds it (ajv ignores a default at the root). */
const under = (key: string, schema: object) => ({ type: 'object', additionalProperties: false, properties: { [key]: schema } });

test('each spec validates its own config: defaults filled, bad values and unknown keys named by path', () => {
  for (const s of [forwardInput, httpInput]) {
    const config = validateConfig(spec<Record<string, Record<string, unknown>>>(under(s.type, s.schema)), {});
    expect(config[s.type].port).toBe(s.type === 'forward' ? 24224 : 9880);
    expect(config[s.type].bind).toBe('127.0.0.1');
  }
  const forward = under('forward', forwardInputSchema);
  expect(problems(forward, { forward: { port: 70000, max_pending_batches: 0, body_limit_bytes: 1 } })).toEqual([
    'forward.body_limit_bytes: unknown key',
    'forward.port: must be <= 65535',
    'forward.max_pending_batches: must be >= 1',
  ]);
  expect(problems(under('http', httpInputSchema), { http: { max_records_per_request: 0, udp_heartbeat: true } })).toEqual([
    'http.udp_heartbeat: unknown key',
    'http.max_records_per_request: must be >= 1',
  ]);
  expect(problems(forward, { forward: { security: { shared_key: 'k' } } })).toEqual([
    'forward.security.self_hostname: required key is missing',
  ]);
  // tail has no default: a role without a tail: key builds no tail input
  const tail = under('tail', tailInputSchema);
  expect(validateConfig(spec<Record<string, unknown>>(tail), {}).tail).toBeUndefined();
  expect(problems(tail, { tail: {} })).toEqual(['tail.path: required key is missing']);
  expect(problems(tail, { tail: { path: ['/var/log/*.log'], parser: { type: 'xml' }, rotate_wait: 5 } })).toEqual([
    'tail.rotate_wait: unknown key',
    'tail.parser.type: must be one of "none", "json", "regex", "nginx", "apache2", "syslog_rfc3164", "syslog_rfc5424"',
  ]);
});

test("a role's defaults are applied, the base schemas keep theirs, and an explicit value still wins", () => {
  const config = validateConfig(spec<Record<string, Record<string, unknown>>>(aggregatorLike), {});
  expect(config.forward).toMatchObject({ bind: '0.0.0.0', max_pending_batches: 8, max_pending_bytes: 67108864, port: 24224 });
  expect(config.http).toMatchObject({ enabled: false, bind: '127.0.0.1', port: 9880 });
  expect(aggregatorLike.properties.forward.properties.max_pending_batches.description).toBe('Deep enough to overlap fsyncs.');
  expect(Object.keys(aggregatorLike.properties.forward.properties)).toEqual(Object.keys(forwardInputSchema.properties));

  expect(forwardInputSchema.properties.bind.default).toBe('127.0.0.1');
  expect(forwardInputSchema.properties.max_pending_batches.default).toBe(2);
  expect(httpInputSchema.properties.enabled.default).toBe(true);
  const forwarderLike = validateConfig(
    spec<Record<string, Record<string, unknown>>>({ ...aggregatorLike, properties: inputProperties() }),
    {},
  );
  expect(forwarderLike.forward).toMatchObject({ bind: '127.0.0.1', max_pending_batches: 2 });
  expect(forwarderLike.http.enabled).toBe(true);

  const explicit = validateConfig(spec<Record<string, Record<string, unknown>>>(aggregatorLike), {
    forward: { bind: '127.0.0.1' },
    http: { enabled: true },
  });
  expect(explicit.forward.bind).toBe('127.0.0.1');
  expect(explicit.http.enabled).toBe(true);
});

test("an unknown key under a role's input is rejected with its path", () => {
  expect(problems(aggregatorLike, { forward: { prot: 1 }, http: { enabled: true, bodylimit: 5 } })).toEqual([
    'forward.prot: unknown key',
    'http.bodylimit: unknown key',
  ]);
  expect(() => withDefaults(forwardInputSchema, { nope: { default: 1 } } as never)).toThrow('the schema has no key "nope"');
});

function post(port: number, path: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.setTimeout(5000, () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

test('createInputs builds the configured inputs and labels their counters with the input', async () => {
  const base = validateConfig(spec<Record<string, Record<string, unknown>>>(aggregatorLike), {
    forward: { bind: '127.0.0.1', port: 0 },
    http: { port: 0 },
  });
  const ctx = { logger: silentLogger, onRefused: () => {} };
  expect(createInputs(base as never, ctx).map((i) => i.name)).toEqual(['forward']);
  expect(createInputs({ http: base.http } as never, ctx)).toEqual([]);

  const refused: string[] = [];
  const accepted: string[] = [];
  const inputs = createInputs({ ...base, http: { ...base.http, enabled: true } } as never, {
    logger: silentLogger,
    onRefused: (input, code) => refused.push(`${input}:${code}`),
    onAccepted: (input, chunks) => accepted.push(`${input}:${chunks.reduce((n, c) => n + c.count, 0)}`),
  });
  expect(inputs.map((i) => i.name)).toEqual(['forward', 'http']);
  const consumed: ForwardChunk[] = [];
  try {
    for (const input of inputs) await input.start(async (chunks) => void consumed.push(...chunks));
    const http = inputs[1].address.port;
    expect(await post(http, '/app.web', JSON.stringify([{ a: 1 }, { a: 2 }]))).toBe(200);
    expect(await post(http, '/app.web', '{not json')).toBe(400);
    expect(consumed.map((c) => [c.tag, c.count])).toEqual([['app.web', 2]]);
    expect(accepted).toEqual(['http:2']);
    expect(refused).toEqual(['http:TRB_HTTP_BAD_REQUEST']);
    expect(inputs[0].address.port).toBeGreaterThan(0);
  } finally {
    for (const input of inputs) await input.stop(0);
  }
});
