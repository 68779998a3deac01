import { createLogger } from '@tributary/core';
import { catchSignalsEarly, drainOnSignals } from './shutdown';

const logger = createLogger('test', 'error');

afterEach(() => jest.restoreAllMocks());

test('a SIGTERM that arrives while the role is still starting is not lost: the drain runs once it is up, exit 0', async () => {
  const exit = jest.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
  catchSignalsEarly();
  const before = process.listenerCount('SIGTERM');
  process.emit('SIGTERM', 'SIGTERM'); // the listener runs; nothing is killed
  const drained: string[] = [];
  const dispose = drainOnSignals(logger, async (signal) => {
    drained.push(signal);
  });
  await new Promise((r) => setImmediate(r));
  expect(drained).toEqual(['SIGTERM']);
  expect(exit).toHaveBeenCalledWith(0);
  // A second signal while draining does not drain again; the early listener is gone.
  process.emit('SIGTERM', 'SIGTERM');
  await new Promise((r) => setImmediate(r));
  expect(drained).toEqual(['SIGTERM']);
  expect(process.listenerCount('SIGTERM')).toBe(before);
  dispose();
});

test('without an early signal nothing drains until one arrives; a failed drain exits 1', async () => {
  const exit = jest.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
  catchSignalsEarly();
  let calls = 0;
  const dispose = drainOnSignals(logger, async () => {
    calls++;
    throw new Error('disk gone');
  });
  await new Promise((r) => setImmediate(r));
  expect(calls).toBe(0);
  process.emit('SIGINT', 'SIGINT');
  await new Promise((r) => setImmediate(r));
  expect(calls).toBe(1);
  expect(exit).toHaveBeenCalledWith(1);
  dispose();
});

test.each([
  ['unhandledRejection', 'Promise.reject(new Error("boom"))', 'TRB_UNHANDLED_REJECTION'],
  ['uncaughtException', 'setTimeout(() => { throw new Error("boom"); }, 1)', 'TRB_UNCAUGHT_EXCEPTION'],
])('an %s logs a coded fatal line and exits 1 (so systemd restarts the process)', (_, trigger, code) => {
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  const script = `
    const { createLogger } = require('@tributary/core');
    require('./dist/commands/shutdown.js').exitOnUnhandled(createLogger('t', 'info'));
    setInterval(() => {}, 1000); // a live process: only the handler ends it
    ${trigger};`;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: `${__dirname}/../..`, encoding: 'utf8', timeout: 10_000 });
  expect(r.status).toBe(1);
  const line = JSON.parse(r.stderr.trim().split('\n').pop() as string);
  expect(line.code).toBe(code);
  expect(line.level).toBe(60);
  expect(line.msg).toMatch(/boom/);
});
