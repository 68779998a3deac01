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
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Transform } from 'node:stream';
import { Codes, type ErrorCode, LogLimiter } from '@tributary/core';
import {
  EventTime,
  type ForwardChunk,
  MAX_EVENT_SECONDS,
  ProtocolError,
  UnencodableRecord,
  admitChunk,
  asAdmissionError,
  clip,
  encodeEntry,
  readArrayHeader,
} from '@tributary/forward-protocol';
import Fastify, { type FastifyInstance } from 'fastify';
import { Unpackr } from 'msgpackr';
import { type Consume, type Input, type InputContext, admissionFor, notListening } from '../input';
import { consumeInPieces } from '../pieces';
import type { HttpInputConfig } from './config';

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/** How often Node checks the header and request timeouts (its default, 30 s, would let them run 30 s late). */
const TIMEOUT_CHECK_INTERVAL_MS = 1000;

/** Bytes of request bodies being received, all requests together, bounded. */
class BodyBudget {
  bytes = 0;

  constructor(readonly max: number) {}

  reserve(n: number): boolean {
    if (this.bytes + n > this.max) return false;
    this.bytes += n;
    return true;
  }

  refusal(n: number): string {
    return `Request bodies being received hold ${this.bytes} bytes; ${n} more would pass the limit of ${this.max} (max_pending_bytes); retry later.`;
  }

  /** Gives `bytes` back once the response is sent or the connection closes, whichever comes first (once). */
  holdUntilDone(req: NodeJS.EventEmitter, res: NodeJS.EventEmitter, bytes: number | (() => number)): void {
    let done = false;
    const release = () => {
      if (done) return;
      done = true;
      this.bytes -= typeof bytes === 'number' ? bytes : bytes();
    };
    res.once('finish', release);
    res.once('close', release);
    req.once('close', release);
  }
}

class BadRequest extends Error {
  constructor(
    message: string,
    readonly code: ErrorCode = Codes.TRB_HTTP_BAD_REQUEST,
    readonly statusCode = 400,
  ) {
    super(message);
  }
}

function tooManyRecords(count: number, max: number): BadRequest {
  return new BadRequest(
    `the array holds ${count} records, over the limit of ${max} (max_records_per_request)`,
    Codes.TRB_HTTP_TOO_MANY_RECORDS,
    413,
  );
}

function parseTime(value: unknown, where: string): EventTime {
  const t = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof t !== 'number' || !(t >= 0 && t < MAX_EVENT_SECONDS)) {
    throw new BadRequest(`${where} is not a Unix time in seconds in [0, 2^32)`, Codes.TRB_FWD_BAD_TIME);
  }
  return EventTime.fromSeconds(t);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

/**
 * The entry of a record the client sent; a record the encoder refuses (the
 * keys `constructor` and `toJSON` with values that are no functions: msgpackr
 * calls it) is the client's bad request (400), not our failure (500, which a
 * client retries). Any other error propagates: the error handler makes a
 * record nested past the encoder's stack TRB_FWD_TOO_DEEP (400).
 */
function encodeRecord(time: EventTime, record: Record<string, unknown>, what: string): Buffer {
  try {
    return encodeEntry(time, record);
  } catch (err) {
    if (!(err instanceof UnencodableRecord)) throw err;
    throw new BadRequest(`${what} cannot be encoded as MessagePack (${err.message})`);
  }
}

function toChunk(tag: string, body: unknown, timeParam: unknown, maxRecords: number): ForwardChunk {
  if (!tag) throw new BadRequest('the tag (URL path) is empty');
  const entries: Buffer[] = [];
  if (Array.isArray(body)) {
    if (body.length > maxRecords) throw tooManyRecords(body.length, maxRecords);
    body.forEach((rec, i) => {
      if (!isRecord(rec)) throw new BadRequest(`element ${i} of the array is not an object`);
      let time = EventTime.now();
      if (rec.time !== undefined) {
        time = parseTime(rec.time, `element ${i}'s "time"`);
        const { time: _dropped, ...rest } = rec;
        rec = rest;
      }
      entries.push(encodeRecord(time, rec, `element ${i}`));
    });
    if (entries.length === 0) throw new BadRequest('the array is empty');
  } else if (isRecord(body)) {
    entries.push(encodeRecord(timeParam === undefined ? EventTime.now() : parseTime(timeParam, 'the time parameter'), body, 'the object'));
  } else {
    throw new BadRequest('the body is neither an object nor an array of objects');
  }
  return { tag, entries: Buffer.concat(entries), count: entries.length, mode: 'forward' };
}

/** The HTTP input; it listens once started. */
export function createHttpInput(config: HttpInputConfig, ctx: InputContext): Input {
  let app: FastifyInstance | null = null;
  const stopping = { graceMs: 0 };
  return {
    name: 'http',
    get address(): AddressInfo {
      if (!app) throw notListening('http');
      return app.server.address() as AddressInfo;
    },
    async start(consume) {
      app = createApp(config, ctx, consume, stopping);
      await app.listen({ host: config.bind, port: config.port });
    },
    async stop(graceMs) {
      stopping.graceMs = graceMs;
      await app?.close();
    },
  };
}

function createApp(config: HttpInputConfig, ctx: InputContext, next: Consume, stopping: { graceMs: number }): FastifyInstance {
  const { logger } = ctx;
  // One line per code per interval: a burst of failed requests must not become a line per request.
  const logLimiter = new LogLimiter();
  const logFailure = (level: 'warn' | 'error', code: string, fields: Record<string, unknown>, message: string) => {
    const suppressed = logLimiter.admit(code);
    if (suppressed === null) return;
    logger[level](
      { code, ...fields, ...(suppressed ? { suppressed } : {}) },
      `${message}${suppressed ? ` (${suppressed} more with this code since the last line, counted in the metrics)` : ''}`,
    );
  };
  const admission = admissionFor(ctx);
  // Header and whole-request deadlines (slowloris), checked every second.
  const app = Fastify({
    bodyLimit: config.body_limit_bytes,
    logger: false,
    serverFactory: (handler) =>
      createServer(
        {
          headersTimeout: config.header_timeout_ms,
          requestTimeout: config.request_timeout_ms,
          connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS,
        },
        handler,
      ),
  });
  const budget = new BodyBudget(config.max_pending_bytes);
  // Bodies being received count in one budget: a declared length is reserved up front (503 when it does not fit),
  // a chunked body byte by byte as it arrives; given back when the response is sent or the request aborted.
  app.addHook('onRequest', async (req, reply) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (!(declared > 0) || declared > config.body_limit_bytes) return; // none, or fastify's own 413
    if (!budget.reserve(declared)) {
      ctx.onRefused(Codes.TRB_HTTP_BUSY);
      reply.header('connection', 'close');
      return reply
        .code(503)
        .header('retry-after', '1')
        .send({ error: budget.refusal(declared), code: Codes.TRB_HTTP_BUSY });
    }
    budget.holdUntilDone(req.raw, reply.raw, declared);
  });
  app.addHook('preParsing', async (req, reply, payload) => {
    if (req.headers['content-length'] !== undefined) return payload;
    let held = 0;
    budget.holdUntilDone(req.raw, reply.raw, () => held);
    return payload.pipe(
      new Transform({
        transform(chunk: Buffer, _enc, next) {
          if (!budget.reserve(chunk.length)) {
            next(new BadRequest(budget.refusal(chunk.length), Codes.TRB_HTTP_BUSY, 503));
            return;
          }
          held += chunk.length;
          next(null, chunk);
        },
      }),
    );
  });
  // On close, requests still running after the grace period are cut (a slow sender cannot hold SIGTERM).
  app.addHook('preClose', async () => {
    app.server.closeIdleConnections();
    setTimeout(() => app.server.closeAllConnections(), stopping.graceMs).unref();
  });
  const msgpack = (_req: unknown, body: Buffer, done: (err: Error | null, value?: unknown) => void) => {
    try {
      // Count before decoding: a few bytes per record would otherwise become hundreds of MB of objects.
      const array = readArrayHeader(body, 0, body.length);
      if (array && array.count > config.max_records_per_request) throw tooManyRecords(array.count, config.max_records_per_request);
      done(null, unpackr.unpack(body));
    } catch (err) {
      done(err instanceof BadRequest ? err : new BadRequest(`the msgpack body is malformed: ${clip((err as Error).message)}`));
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
        ? Codes.TRB_HTTP_TOO_LARGE
        : status === 400
          ? Codes.TRB_HTTP_BAD_REQUEST
          : status === 408
            ? Codes.TRB_HTTP_TIMEOUT
            : Codes.TRB_HTTP_ERROR;
    ctx.onRefused(code);
    if (status >= 500) logFailure('error', code, { err: clip(err.message) }, `HTTP input failed: ${clip(err.message)}`);
    const message = err instanceof BadRequest ? (status === 503 ? err.message : `Bad request: ${err.message}.`) : clip(err.message, 1000);
    if (status === 503) reply.header('retry-after', '1');
    reply.code(status).send({ error: message, code });
  });
  app.get('/healthz', async () => 'ok');
  app.post('/*', async (req, reply) => {
    let tag: string;
    try {
      tag = decodeURIComponent((req.params as { '*': string })['*'] ?? '').replace(/\//g, '.');
    } catch {
      throw new BadRequest('the tag (URL path) is not valid percent-encoded UTF-8', Codes.TRB_FWD_BAD_TAG);
    }
    const chunk = admitChunk(
      toChunk(tag, req.body, (req.query as Record<string, unknown>).time, config.max_records_per_request),
      admission,
    );
    if (ctx.isFull?.()) {
      ctx.onRefused(Codes.TRB_BUF_FULL);
      return reply.code(503).header('retry-after', '1').send({ error: 'The buffer is full; retry later.', code: Codes.TRB_BUF_FULL });
    }
    try {
      await consumeInPieces(next, [chunk], ctx.chunkLimitBytes);
    } catch (err) {
      const code = (err as { code?: string }).code ?? Codes.TRB_HTTP_ERROR;
      ctx.onRefused(code);
      logFailure(
        'warn',
        code,
        { tag: clip(tag, 100) },
        `The next stage refused an HTTP request's events; answered 503: ${clip((err as Error).message)}`,
      );
      return reply
        .code(503)
        .header('retry-after', '1')
        .send({ error: (err as Error).message, code: (err as { code?: string }).code });
    }
    ctx.onAccepted?.([chunk]);
    return reply.code(200).send('');
  });
  return app;
}
