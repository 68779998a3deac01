/**
 * The HTTP input, compatible with Fluentd's in_http:
 *
 *   POST /<tag>            body: a JSON object, a JSON array of objects, or the
 *                          same in msgpack (Content-Type application/msgpack or
 *                          application/x-msgpack); form bodies `json=` / `msgpack=`
 *   ?time=<unix seconds>   event time for a single record (fractions kept)
 *
 * In an array, a numeric `time` field of each record is its event time (and
 * removed from the record), as Fluentd does. 200 only once the events are in
 * the buffer; 400 with the reason for a bad body; 413 over the body limit;
 * 503 with Retry-After when the buffer is full under the block policy.
 */
import type { Logger } from '@tributary/core';
import {
  type AdmissionLimits,
  DEFAULT_ADMISSION,
  EventTime,
  type ForwardChunk,
  MAX_EVENT_SECONDS,
  ProtocolError,
  admitChunk,
  asAdmissionError,
  clip,
  encodeEntry,
} from '@tributary/forward-protocol';
import Fastify, { type FastifyInstance } from 'fastify';
import { Unpackr } from 'msgpackr';
import { consumeInPieces } from './pieces';

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export interface HttpInputConfig {
  bind: string;
  port: number;
  body_limit_bytes: number;
  max_records_per_request: number;
}

export interface HttpInputHooks {
  consume(chunks: ForwardChunk[]): Promise<void>;
  isFull(): boolean;
  onAccepted(chunks: ForwardChunk[]): void;
  onRefused(code: string): void;
  /** The forwarder's buffer chunk limit (see `ForwardInputHooks.chunkLimitBytes`); unset at the aggregator. */
  chunkLimitBytes?: number;
}

class BadRequest extends Error {
  constructor(
    message: string,
    readonly code = 'TRB_HTTP_BAD_REQUEST',
    readonly statusCode = 400,
  ) {
    super(message);
  }
}

function parseTime(value: unknown, where: string): EventTime {
  const t = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof t !== 'number' || !(t >= 0 && t < MAX_EVENT_SECONDS)) {
    throw new BadRequest(`${where} is not a Unix time in seconds in [0, 2^32)`, 'TRB_FWD_BAD_TIME');
  }
  return EventTime.fromSeconds(t);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

function toChunk(tag: string, body: unknown, timeParam: unknown, maxRecords: number): ForwardChunk {
  if (!tag) throw new BadRequest('the tag (URL path) is empty');
  const entries: Buffer[] = [];
  if (Array.isArray(body)) {
    if (body.length > maxRecords) {
      throw new BadRequest(
        `the array holds ${body.length} records, over the limit of ${maxRecords} (max_records_per_request)`,
        'TRB_HTTP_TOO_MANY_RECORDS',
        413,
      );
    }
    body.forEach((rec, i) => {
      if (!isRecord(rec)) throw new BadRequest(`element ${i} of the array is not an object`);
      let time = EventTime.now();
      if (rec.time !== undefined) {
        time = parseTime(rec.time, `element ${i}'s "time"`);
        const { time: _dropped, ...rest } = rec;
        rec = rest;
      }
      entries.push(encodeEntry(time, rec));
    });
    if (entries.length === 0) throw new BadRequest('the array is empty');
  } else if (isRecord(body)) {
    entries.push(encodeEntry(timeParam === undefined ? EventTime.now() : parseTime(timeParam, 'the time parameter'), body));
  } else {
    throw new BadRequest('the body is neither an object nor an array of objects');
  }
  return { tag, entries: Buffer.concat(entries), count: entries.length, mode: 'forward' };
}

export async function createHttpInput(config: HttpInputConfig, hooks: HttpInputHooks, logger: Logger): Promise<FastifyInstance> {
  const admission: AdmissionLimits =
    hooks.chunkLimitBytes === undefined ? DEFAULT_ADMISSION : { ...DEFAULT_ADMISSION, maxEventBytes: hooks.chunkLimitBytes };
  const app = Fastify({ bodyLimit: config.body_limit_bytes, logger: false });
  const msgpack = (_req: unknown, body: Buffer, done: (err: Error | null, value?: unknown) => void) => {
    try {
      done(null, unpackr.unpack(body));
    } catch (err) {
      done(new BadRequest(`the msgpack body is malformed: ${(err as Error).message}`));
    }
  };
  app.addContentTypeParser(['application/msgpack', 'application/x-msgpack'], { parseAs: 'buffer' }, msgpack);
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    const form = new URLSearchParams(body as string);
    try {
      if (form.has('json')) done(null, JSON.parse(form.get('json') as string));
      else if (form.has('msgpack')) done(null, unpackr.unpack(Buffer.from(form.get('msgpack') as string, 'latin1')));
      else done(new BadRequest('the form has neither a json nor a msgpack field'));
    } catch (err) {
      done(new BadRequest(`the form body is malformed: ${(err as Error).message}`));
    }
  });
  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, _req, reply) => {
    // A client's value nested past what a parser's stack holds is the client's fault (400), not ours.
    const err = asAdmissionError(error) as Error & { statusCode?: number; code?: string };
    const refused = err instanceof BadRequest || err instanceof ProtocolError;
    const status = err instanceof BadRequest ? err.statusCode : refused ? 400 : (err.statusCode ?? 500);
    const code = refused
      ? (err.code as string)
      : status === 413
        ? 'TRB_HTTP_TOO_LARGE'
        : status === 400
          ? 'TRB_HTTP_BAD_REQUEST'
          : status === 408
            ? 'TRB_HTTP_TIMEOUT'
            : 'TRB_HTTP_ERROR';
    hooks.onRefused(code);
    if (status >= 500) logger.error({ code, err: clip(err.message) }, `HTTP input failed: ${clip(err.message)}`);
    const message = err instanceof BadRequest ? `Bad request: ${err.message}.` : clip(err.message, 1000);
    reply.code(status).send({ error: message, code });
  });
  app.get('/healthz', async () => 'ok');
  app.post('/*', async (req, reply) => {
    let tag: string;
    try {
      tag = decodeURIComponent((req.params as { '*': string })['*'] ?? '').replace(/\//g, '.');
    } catch {
      throw new BadRequest('the tag (URL path) is not valid percent-encoded UTF-8', 'TRB_FWD_BAD_TAG');
    }
    const chunk = admitChunk(
      toChunk(tag, req.body, (req.query as Record<string, unknown>).time, config.max_records_per_request),
      admission,
    );
    if (hooks.isFull()) {
      hooks.onRefused('TRB_BUF_FULL');
      return reply.code(503).header('retry-after', '1').send({ error: 'The buffer is full; retry later.', code: 'TRB_BUF_FULL' });
    }
    try {
      await consumeInPieces(hooks.consume, [chunk], hooks.chunkLimitBytes);
    } catch (err) {
      hooks.onRefused((err as { code?: string }).code ?? 'TRB_HTTP_ERROR');
      return reply
        .code(503)
        .header('retry-after', '1')
        .send({ error: (err as Error).message, code: (err as { code?: string }).code });
    }
    hooks.onAccepted([chunk]);
    return reply.code(200).send('');
  });
  await app.listen({ host: config.bind, port: config.port });
  return app;
}
