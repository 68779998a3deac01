/**
 * A Forward server that records every event it accepts, decoded, for tests
 * that check what real clients delivered.
 */
import { type DecodedEvent, ForwardServer, type ForwardServerOptions, decodeEntries } from '@tributary/forward-protocol';

export interface RecordedEvent extends DecodedEvent {
  tag: string;
  chunkId?: string;
}

export async function startRecordingServer(opts: Partial<ForwardServerOptions> = {}) {
  const events: RecordedEvent[] = [];
  const errors: Error[] = [];
  const server = new ForwardServer({
    host: '127.0.0.1',
    port: 0,
    consume: async (chunks) => {
      for (const c of chunks) for (const e of decodeEntries(c.entries)) events.push({ ...e, tag: c.tag, chunkId: c.chunkId });
    },
    onError: (err) => errors.push(err),
    ...opts,
  });
  const { port } = await server.listen();
  return { server, port, events, errors };
}

/** Polls `check` every 20 ms until it returns true or `ms` elapse. */
export async function waitFor(check: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting for ${what}.`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
