/**
 * A Firehose-API endpoint for tests: PutRecordBatch over HTTP (AWS JSON 1.1,
 * `X-Amz-Target: Firehose_20150804.PutRecordBatch`), delivering accepted
 * records to a directory, as a delivery stream delivers to S3. Faults are
 * injectable: throttle whole calls, and fail individual records.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export interface FirehoseEndpoint {
  url: string;
  stats: { calls: number; recordsAccepted: number; recordsFailed: number; throttledCalls: number };
  /** The next `n` calls answer ServiceUnavailableException (throttling). */
  throttleNext(n: number): void;
  /** Every `n`-th record of a call fails with ServiceUnavailableException (0: none). */
  failEveryNth(n: number): void;
  /** Every NDJSON line delivered so far. */
  lines(): string[];
  close(): Promise<void>;
}

export async function startFirehoseEndpoint(dir: string): Promise<FirehoseEndpoint> {
  mkdirSync(dir, { recursive: true });
  const delivered: string[] = [];
  const stats = { calls: 0, recordsAccepted: 0, recordsFailed: 0, throttledCalls: 0 };
  let throttle = 0;
  let nth = 0;
  let recordSeq = 0;
  const server: Server = createServer((req, res) => {
    const body: Buffer[] = [];
    req.on('data', (d) => body.push(d));
    req.on('end', () => {
      const target = req.headers['x-amz-target'];
      const reply = (status: number, payload: unknown) => {
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify(payload));
      };
      if (target !== 'Firehose_20150804.PutRecordBatch')
        return reply(400, { __type: 'UnknownOperationException', message: `unsupported ${target}` });
      stats.calls++;
      if (throttle > 0) {
        throttle--;
        stats.throttledCalls++;
        return reply(400, { __type: 'ServiceUnavailableException', message: 'Slow down.' });
      }
      const { DeliveryStreamName, Records } = JSON.parse(Buffer.concat(body).toString('utf8')) as {
        DeliveryStreamName: string;
        Records: Array<{ Data: string }>;
      };
      const responses = Records.map((r) => {
        recordSeq++;
        if (nth > 0 && recordSeq % nth === 0) {
          stats.recordsFailed++;
          return { ErrorCode: 'ServiceUnavailableException', ErrorMessage: 'Slow down.' };
        }
        stats.recordsAccepted++;
        const text = Buffer.from(r.Data, 'base64').toString('utf8');
        appendFileSync(join(dir, `${DeliveryStreamName}.ndjson`), text);
        delivered.push(...text.split('\n').filter(Boolean));
        return { RecordId: `r-${recordSeq}` };
      });
      const failed = responses.filter((r) => 'ErrorCode' in r).length;
      reply(200, { FailedPutCount: failed, Encrypted: false, RequestResponses: responses });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stats,
    throttleNext: (n) => {
      throttle = n;
    },
    failEveryNth: (n) => {
      nth = n;
    },
    lines: () => delivered,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
