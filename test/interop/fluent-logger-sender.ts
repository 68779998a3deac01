/**
 * What the interop tests send with the `fluent-logger` npm package: `n`
 * events on tag `app.web`, event `i` being `{msg: "event i ü", n: i}` at
 * EventTime(1700000000 + i, i * 1000 + 7), with acks; resolves when every
 * emit was acked and the sender closed, failing on any error it reported.
 */
// biome-ignore lint/suspicious/noExplicitAny: fluent-logger ships loose typings
const fluent: any = require('fluent-logger');

export async function sendWithFluentLogger(port: number, n: number, options: Record<string, unknown>): Promise<void> {
  const sender = fluent.createFluentSender('app', {
    host: '127.0.0.1',
    port,
    timeout: 5,
    internalLogger: { info() {}, error() {} },
    requireAckResponse: true,
    ackResponseTimeout: 5000,
    ...options,
  });
  const errors: Error[] = [];
  sender.on('error', (err: Error) => errors.push(err));
  await Promise.all(
    Array.from(
      { length: n },
      (_, i) =>
        new Promise<void>((resolve, reject) =>
          sender.emit('web', { msg: `event ${i} ü`, n: i }, new fluent.EventTime(1700000000 + i, i * 1000 + 7), (err?: Error) =>
            err ? reject(err) : resolve(),
          ),
        ),
    ),
  );
  await new Promise<void>((r) => sender.end(null, null, () => r()));
  expect(errors).toEqual([]);
}
