/**
 * RedisDedupe on a real redis-server (started here on a free loopback port):
 * when Redis loses its memory, the rebuild re-marks the shared log's tail
 * (Kafka: every node's chunks, the dead ones' included), not only this node's.
 */
import { startRedis } from '@tributary/test-kit';
import Redis from 'ioredis';
import { type RebuildReport, RedisDedupe, type RedisDedupeEvents } from './redis-dedupe';

const quiet: RedisDedupeEvents = {
  error: () => {},
  stateLost: () => {},
  rebuilt: () => {},
  rebuildFailed: () => {},
  waitingForPeers: () => {},
  unverified: () => {},
  staleClaims: () => {},
};

test("after Redis lost its memory, chunks in the log's tail written by another node are done again", async () => {
  const redis = await startRedis();
  const client = new Redis(redis.url, { maxRetriesPerRequest: 1, commandTimeout: 1000 });
  const rebuilt: Array<{ keys: number }> = [];
  let tailReads = 0;
  const store = new RedisDedupe({
    client,
    node: 'a',
    prefix: 'trb:test:',
    claimTtlMs: 30_000,
    doneTtlMs: 600_000,
    onUnavailable: 'fail_closed',
    rebuildWaitMs: 500,
    rebuildMaxKeys: 1000,
    // another node wrote k-other-1 and k-other-2 to the shared log and died
    logTail: async () => {
      tailReads++;
      return ['k-other-1', 'k-other-2'];
    },
    events: { ...quiet, rebuilt: (e) => rebuilt.push(e) },
  });
  try {
    await store.start([]);
    await client.flushall();
    // the next claim round trip sees the epoch gone; the rebuild runs in the background
    for (let i = 0; i < 100 && rebuilt.length < 2; i++) {
      await store.claim([`probe-${i}`]).catch(() => []);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(rebuilt.length).toBeGreaterThanOrEqual(2);
    expect(tailReads).toBeGreaterThanOrEqual(1);
    expect(await store.claim(['k-other-1', 'k-other-2', 'k-new'])).toEqual(['done', 'done', 'claimed']);
  } finally {
    await store.close();
    client.disconnect();
    await redis.stop();
  }
}, 30_000);

test("a tail that cannot be read leaves the rebuild to this node's own keys, and says so", async () => {
  const redis = await startRedis();
  const client = new Redis(redis.url, { maxRetriesPerRequest: 1, commandTimeout: 1000 });
  const failures: string[] = [];
  let rebuilds = 0;
  const store = new RedisDedupe({
    client,
    node: 'a',
    prefix: 'trb:test:',
    claimTtlMs: 30_000,
    doneTtlMs: 600_000,
    onUnavailable: 'fail_closed',
    rebuildWaitMs: 500,
    rebuildMaxKeys: 1000,
    logTail: async () => {
      throw new Error('brokers unreachable');
    },
    events: { ...quiet, rebuilt: () => rebuilds++, rebuildFailed: (err) => failures.push(err.message) },
  });
  try {
    await store.start(['k-mine']);
    expect(rebuilds).toBe(1);
    expect(failures.some((m) => /reading the log's tail failed.*brokers unreachable/.test(m))).toBe(true);
    expect(await store.claim(['k-mine'])).toEqual(['done']);
  } finally {
    await store.close();
    client.disconnect();
    await redis.stop();
  }
}, 30_000);

test('a chunk being written when Redis loses its memory stays claimed after the rebuild: a resend to a peer is not written twice', async () => {
  const redis = await startRedis();
  const clients = ['a', 'b'].map(() => new Redis(redis.url, { maxRetriesPerRequest: 1, commandTimeout: 1000 }));
  const afterLoss = { a: 0, b: 0 };
  const store = (node: 'a' | 'b', client: Redis) =>
    new RedisDedupe({
      client,
      node,
      prefix: 'trb:test:',
      claimTtlMs: 30_000,
      doneTtlMs: 600_000,
      onUnavailable: 'fail_closed',
      rebuildWaitMs: 5000,
      rebuildMaxKeys: 1000,
      events: {
        ...quiet,
        rebuilt: (e) => {
          if (e.afterLoss) afterLoss[node]++;
        },
      },
    });
  const a = store('a', clients[0]);
  const b = store('b', clients[1]);
  try {
    await Promise.all([a.start([]), b.start([])]);
    // both know each other before the loss (the registry is read on a busy claim)
    await a.claim(['seen']);
    await b.claim(['seen']);
    await a.claim(['seen']);
    // a claimed chunk x and is appending it to its log (slow fsync): no done mark yet
    expect(await a.claim(['x'])).toEqual(['claimed']);
    await clients[0].flushall();
    // both see the loss and rebuild while a's append of x is still in flight; resends of x to a
    // meanwhile are refused (their claims given back must not give back the one a's write holds)
    for (let i = 0; i < 200 && (afterLoss.a < 1 || afterLoss.b < 1); i++) {
      await Promise.all([a.claim([`probe-a-${i}`, 'x']).catch(() => []), b.claim([`probe-b-${i}`]).catch(() => [])]);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(afterLoss).toEqual({ a: 1, b: 1 });
    // the forwarder timed out on a's ack and resends x to b: b must not write it
    expect(await b.claim(['x'])).toEqual(['busy']);
    // a resend of x to a after the rebuild is refused as well (busy for its owner too)
    expect(await a.claim(['x'])).toEqual(['busy']);
    // a's append completes: the resend is acked without a second write
    await a.markDone(['x']);
    expect(await b.claim(['x'])).toEqual(['done']);
  } finally {
    await Promise.all([a.close(), b.close()]);
    for (const c of clients) c.disconnect();
    await redis.stop();
  }
}, 30_000);

type Hooked = Redis & {
  trbClaim(key: string, value: string, ttlMs: number, takeover: string): Promise<string>;
};

test.each(['fail_closed', 'fail_open'] as const)(
  '%s: two nodes cannot both take over one stale claim when Redis loses its memory between the takeover rounds',
  async (onUnavailable) => {
    const redis = await startRedis();
    const clients = [0, 1, 2, 3].map(() => new Redis(redis.url, { maxRetriesPerRequest: 1, commandTimeout: 1000 }));
    const lost: string[] = [];
    const store = (node: string, client: Redis) =>
      new RedisDedupe({
        client,
        ownsClient: false,
        node,
        prefix: 'trb:test:',
        claimTtlMs: 30_000,
        doneTtlMs: 600_000,
        onUnavailable,
        rebuildWaitMs: 500,
        rebuildMaxKeys: 1000,
        events: { ...quiet, stateLost: () => lost.push(node) },
      });
    // node c claims x and dies before logging it (kill -9); it restarts with a new incarnation
    const dead = store('c', clients[0]);
    const restarted = store('c', clients[1]);
    const a = store('a', clients[2]);
    const b = store('b', clients[3]);
    try {
      await dead.start([]);
      expect(await dead.claim(['x'])).toEqual(['claimed']);
      await dead.close();
      await restarted.start([]);
      // a and b read the registry while they start: c's claim on x is stale for both
      await Promise.all([a.start([]), b.start([])]);
      // b finds x stale in its first round; before b's takeover round runs, a takes x over and
      // Redis loses its memory (both rounds of b run on one connection, in order)
      const hooked = clients[3] as Hooked;
      const claim = hooked.trbClaim.bind(hooked);
      const get = hooked.get.bind(hooked);
      let between: Promise<void> | null = null;
      let aGot: string[] = [];
      hooked.trbClaim = (key, value, ttlMs, takeover) => {
        if (takeover === '' || between) return claim(key, value, ttlMs, takeover);
        between = (async () => {
          aGot = await a.claim(['x']);
          await clients[2].flushall();
        })();
        return between.then(() => claim(key, value, ttlMs, takeover));
      };
      (hooked as { get: (key: string) => Promise<string | null> }).get = (key) => (between ? between.then(() => get(key)) : get(key));
      if (onUnavailable === 'fail_closed') {
        await expect(b.claim(['x'])).rejects.toMatchObject({ code: 'TRB_DEDUPE_REBUILDING' });
      } else {
        expect(await b.claim(['x'])).toEqual(['busy']);
      }
      expect(between).not.toBeNull();
      await between;
      expect(aGot).toEqual(['claimed']); // a took the stale claim over before the loss
      // b saw the loss in its takeover round, and holds no claim on x
      expect(lost).toContain('b');
      expect(String(await clients[0].get('trb:test:x'))).not.toMatch(/^c:b:/);
    } finally {
      await Promise.all([a, b, restarted].map((s) => s.close()));
      for (const c of clients) c.disconnect();
      await redis.stop();
    }
  },
  30_000,
);

test('a rebuild attempt that fails after re-marking keeps its duplicate count: the retry reports every key another node wrote too', async () => {
  const redis = await startRedis();
  const client = new Redis(redis.url, { maxRetriesPerRequest: 1, commandTimeout: 1000 });
  const reports: RebuildReport[] = [];
  const failures: string[] = [];
  const store = new RedisDedupe({
    client,
    ownsClient: false,
    node: 'a',
    prefix: 'trb:test:',
    claimTtlMs: 30_000,
    doneTtlMs: 600_000,
    onUnavailable: 'fail_closed',
    rebuildWaitMs: 500,
    rebuildMaxKeys: 1000,
    events: { ...quiet, rebuilt: (r) => reports.push(r), rebuildFailed: (err) => failures.push(err.message) },
  });
  try {
    await store.start(['k1', 'k2']);
    // Redis loses its memory; node b, which wrote k1 too (a resend while the marks were gone), re-marks it first
    await client.flushall();
    await client.set('trb:test:k1', 'd:b');
    // a's first rebuild attempt fails after it re-marked its keys (its report to the peers is refused)
    const hset = client.hset.bind(client) as (...args: unknown[]) => Promise<number>;
    let refused = 0;
    (client as unknown as { hset: (...args: unknown[]) => Promise<number> }).hset = (...args) => {
      if (refused === 0 && String(args[0]).startsWith('trb:test:!rebuilt:')) {
        refused++;
        return Promise.reject(new Error('injected: the rebuilt report failed'));
      }
      return hset(...args);
    };
    for (let i = 0; i < 100 && !reports.some((r) => r.afterLoss); i++) {
      await store.claim([`probe-${i}`]).catch(() => []);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(refused).toBe(1);
    expect(failures).toContain('injected: the rebuilt report failed');
    const after = reports.filter((r) => r.afterLoss);
    expect(after).toHaveLength(1);
    expect(after[0]).toMatchObject({ keys: 2, duplicates: 1 });
  } finally {
    await store.close();
    client.disconnect();
    await redis.stop();
  }
}, 30_000);

test('a re-marking wave with one failed command still counts the duplicates its other commands found', async () => {
  const redis = await startRedis();
  const client = new Redis(redis.url, { maxRetriesPerRequest: 1, commandTimeout: 1000 });
  const reports: RebuildReport[] = [];
  const store = new RedisDedupe({
    client,
    ownsClient: false,
    node: 'a',
    prefix: 'trb:test:',
    claimTtlMs: 30_000,
    doneTtlMs: 600_000,
    onUnavailable: 'fail_closed',
    rebuildWaitMs: 500,
    rebuildMaxKeys: 1000,
    events: { ...quiet, rebuilt: (r) => reports.push(r) },
  });
  try {
    await store.start(['k1', 'k2']);
    await client.flushall();
    await client.set('trb:test:k1', 'd:b'); // node b wrote k1 too
    // in a's first rebuild attempt, re-marking k2 fails; k1's succeeds (and overwrites b's mark)
    const hooked = client as unknown as { trbMarkLogged: (key: string, value: string, ttlMs: number) => Promise<string | null> };
    const markLogged = hooked.trbMarkLogged.bind(client);
    let refused = 0;
    hooked.trbMarkLogged = (key, value, ttlMs) => {
      if (refused === 0 && key === 'trb:test:k2') {
        refused++;
        return Promise.reject(new Error('injected: re-marking k2 failed'));
      }
      return markLogged(key, value, ttlMs);
    };
    for (let i = 0; i < 100 && !reports.some((r) => r.afterLoss); i++) {
      await store.claim([`probe-${i}`]).catch(() => []);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(refused).toBe(1);
    expect(reports.filter((r) => r.afterLoss)).toMatchObject([{ keys: 2, duplicates: 1 }]);
  } finally {
    await store.close();
    client.disconnect();
    await redis.stop();
  }
}, 30_000);

test('a chunk both nodes wrote is counted as a duplicate once: not by each node, not again after a second loss', async () => {
  const redis = await startRedis();
  const clients = [0, 1].map(() => new Redis(redis.url, { maxRetriesPerRequest: 1, commandTimeout: 1000 }));
  const found = { a: [] as number[], b: [] as number[] };
  const store = (node: 'a' | 'b', client: Redis) =>
    new RedisDedupe({
      client,
      ownsClient: false,
      node,
      prefix: 'trb:test:',
      claimTtlMs: 30_000,
      doneTtlMs: 600_000,
      onUnavailable: 'fail_open',
      rebuildWaitMs: 300,
      rebuildMaxKeys: 1000,
      events: {
        ...quiet,
        rebuilt: (r) => {
          if (r.afterLoss) found[node].push(r.duplicates);
        },
      },
    });
  // both logs hold k1 (written twice while the marks were lost); only a's holds k2
  const a = store('a', clients[0]);
  const b = store('b', clients[1]);
  const rebuildAfterLoss = async (s: RedisDedupe, node: 'a' | 'b', n: number) => {
    for (let i = 0; i < 100 && found[node].length < n; i++) {
      await s.claim([`probe-${node}-${n}-${i}`]).catch(() => []);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(found[node]).toHaveLength(n);
  };
  try {
    await Promise.all([a.start(['k1', 'k2']), b.start(['k1'])]);
    // Redis loses its memory; b wrote k1 again meanwhile (its done mark is there), then both rebuild, a first
    await clients[0].flushall();
    await clients[0].set('trb:test:k1', 'd:b');
    await rebuildAfterLoss(a, 'a', 1);
    await rebuildAfterLoss(b, 'b', 1);
    // a second loss: both re-mark k1 again
    await clients[0].flushall();
    await rebuildAfterLoss(a, 'a', 2);
    await rebuildAfterLoss(b, 'b', 2);
    const sum = (l: number[]) => l.reduce((x, y) => x + y, 0);
    expect(sum(found.a) + sum(found.b)).toBe(1);
    // every mark still reads done for a claim
    expect(await a.claim(['k1', 'k2'])).toEqual(['done', 'done']);
    expect(await b.claim(['k1', 'k2'])).toEqual(['done', 'done']);
  } finally {
    await Promise.all([a.close(), b.close()]);
    for (const c of clients) c.disconnect();
    await redis.stop();
  }
}, 30_000);

test('a node that restarts keeps its own counted mark ("d+:"): a peer rebuilding after the same loss does not count that duplicate again', async () => {
  const redis = await startRedis();
  const clients = [0, 1, 2].map(() => new Redis(redis.url, { maxRetriesPerRequest: 1, commandTimeout: 1000 }));
  const found = { a: [] as number[], b: [] as number[] };
  const store = (node: 'a' | 'b', client: Redis) =>
    new RedisDedupe({
      client,
      ownsClient: false,
      node,
      prefix: 'trb:test:',
      claimTtlMs: 30_000,
      doneTtlMs: 600_000,
      onUnavailable: 'fail_open',
      rebuildWaitMs: 300,
      rebuildMaxKeys: 1000,
      events: {
        ...quiet,
        rebuilt: (r) => {
          if (r.afterLoss) found[node].push(r.duplicates);
        },
      },
    });
  const rebuildAfterLoss = async (s: RedisDedupe, node: 'a' | 'b', n: number) => {
    for (let i = 0; i < 100 && found[node].length < n; i++) {
      await s.claim([`probe-${node}-${n}-${i}`]).catch(() => []);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(found[node]).toHaveLength(n);
  };
  let a = store('a', clients[0]);
  const b = store('b', clients[1]);
  try {
    await Promise.all([a.start(['k1']), b.start(['k1'])]);
    // Redis loses its memory; b wrote k1 again meanwhile; a rebuilds first and counts it ("d+:a")
    await clients[0].flushall();
    await clients[0].set('trb:test:k1', 'd:b');
    await rebuildAfterLoss(a, 'a', 1);
    expect(await clients[2].get('trb:test:k1')).toBe('d+:a');
    // a restarts (its memory of what it counted is gone) and marks its log again before b rebuilds
    await a.close();
    a = store('a', clients[0]);
    await a.start(['k1']);
    expect(await clients[2].get('trb:test:k1')).toBe('d+:a');
    await rebuildAfterLoss(b, 'b', 1);
    expect(found.a[0] + found.b[0]).toBe(1);
    expect(await b.claim(['k1'])).toEqual(['done']);
  } finally {
    await Promise.all([a.close(), b.close()]);
    for (const c of clients) c.disconnect();
    await redis.stop();
  }
}, 30_000);

test("on a shared log (Kafka), re-marking the tail's chunks of other nodes finds no duplicates; a chunk two nodes appended still counts once", async () => {
  const redis = await startRedis();
  const clients = [0, 1].map(() => new Redis(redis.url, { maxRetriesPerRequest: 1, commandTimeout: 1000 }));
  const found = { a: [] as number[], b: [] as number[] };
  // the topic's tail: chunks of a dead node c, a's own t-a, and t-both, which a and b both appended
  const tail = ['t-c1', 't-c2', 't-a', 't-both'];
  const store = (node: 'a' | 'b', client: Redis) =>
    new RedisDedupe({
      client,
      ownsClient: false,
      node,
      prefix: 'trb:test:',
      claimTtlMs: 30_000,
      doneTtlMs: 600_000,
      onUnavailable: 'fail_closed',
      rebuildWaitMs: 300,
      rebuildMaxKeys: 1000,
      logTail: async () => tail,
      events: {
        ...quiet,
        rebuilt: (r) => {
          if (r.afterLoss) found[node].push(r.duplicates);
        },
      },
    });
  const a = store('a', clients[0]);
  const b = store('b', clients[1]);
  const rebuildAfterLoss = async (s: RedisDedupe, node: 'a' | 'b') => {
    for (let i = 0; i < 100 && found[node].length < 1; i++) {
      await s.claim([`probe-${node}-${i}`]).catch(() => []);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(found[node]).toHaveLength(1);
  };
  try {
    // on Kafka a node's own keys are those it appended since it started (markDone)
    await Promise.all([a.start([]), b.start([])]);
    await a.markDone(['t-a', 't-both']);
    await b.markDone(['t-both']); // b appended t-both too (while the marks were lost, say)
    await clients[0].flushall();
    await rebuildAfterLoss(a, 'a');
    await rebuildAfterLoss(b, 'b');
    expect({ a: found.a[0], b: found.b[0] }).toEqual({ a: 0, b: 1 });
    expect(await a.claim(tail)).toEqual(['done', 'done', 'done', 'done']);
  } finally {
    await Promise.all([a.close(), b.close()]);
    for (const c of clients) c.disconnect();
    await redis.stop();
  }
}, 30_000);

type MarkHooked = Redis & {
  trbMarkLogged(key: string, value: string, ttlMs: number, failOpen: string, countedBefore: string): Promise<number>;
};

test('fail_closed: a peer that is alive but has not re-marked its log after rebuildWaitMs is still waited for: its resent chunks are refused, then done', async () => {
  const redis = await startRedis();
  const clients = ['a', 'b'].map(() => new Redis(redis.url, { maxRetriesPerRequest: 1, commandTimeout: 1000 }));
  const rebuilt: Record<string, RebuildReport[]> = { a: [], b: [] };
  const store = (node: 'a' | 'b', client: Redis) =>
    new RedisDedupe({
      client,
      ownsClient: false,
      node,
      prefix: 'trb:test:',
      claimTtlMs: 30_000,
      doneTtlMs: 600_000,
      onUnavailable: 'fail_closed',
      rebuildWaitMs: 1000,
      rebuildMaxKeys: 1000,
      events: { ...quiet, rebuilt: (e) => rebuilt[node].push(e) },
    });
  const a = store('a', clients[0]);
  const b = store('b', clients[1]);
  try {
    // a starts first, so b's start reads a in the registry: a peer alive before the loss
    await a.start([]);
    await b.start([]);
    // a wrote x and marked it done; its ack to the sender was lost, the sender resends x to b
    expect(await a.claim(['x'])).toEqual(['claimed']);
    await a.markDone(['x']);
    expect(await b.claim(['x'])).toEqual(['done']);
    // Redis loses its memory; a's re-marking fails (commands timing out on a loaded machine) while a stays alive
    const hooked = clients[0] as MarkHooked;
    const markLogged = hooked.trbMarkLogged.bind(hooked);
    let aFails = true;
    hooked.trbMarkLogged = (...args) => (aFails ? Promise.reject(new Error('Command timed out')) : markLogged(...args));
    await clients[1].flushall();
    await Promise.all([a.claim(['probe-a']).catch(() => []), b.claim(['probe-b']).catch(() => [])]);
    // well past b's rebuildWaitMs (and a's heartbeat period, so a is in the new registry): x stays refused at b
    const until = Date.now() + 4000;
    while (Date.now() < until) {
      await expect(b.claim(['x'])).rejects.toMatchObject({ code: 'TRB_DEDUPE_REBUILDING' });
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(rebuilt.b.filter((e) => e.afterLoss)).toEqual([]);
    // a's re-marking succeeds: both trust the marks again, and x is done at b (acked without a second write)
    aFails = false;
    for (let i = 0; i < 100 && (rebuilt.a.length < 2 || rebuilt.b.length < 2); i++) await new Promise((r) => setTimeout(r, 100));
    expect(rebuilt.b.filter((e) => e.afterLoss)).toEqual([expect.objectContaining({ missingPeers: [] })]);
    expect(await b.claim(['x'])).toEqual(['done']);
  } finally {
    await Promise.all([a.close(), b.close()]);
    for (const c of clients) c.disconnect();
    await redis.stop();
  }
}, 30_000);

test('fail_closed: a rebuild attempt retried after rebuildWaitMs (Redis lost its memory again meanwhile) still waits for a live peer to show in the new registry', async () => {
  const redis = await startRedis();
  const clients = ['a', 'b'].map(() => new Redis(redis.url, { maxRetriesPerRequest: 1, commandTimeout: 1000 }));
  const rebuilt: Record<string, RebuildReport[]> = { a: [], b: [] };
  const store = (node: 'a' | 'b', client: Redis) =>
    new RedisDedupe({
      client,
      ownsClient: false,
      node,
      prefix: 'trb:test:',
      claimTtlMs: 30_000,
      doneTtlMs: 600_000,
      onUnavailable: 'fail_closed',
      rebuildWaitMs: 1000,
      rebuildMaxKeys: 1000,
      events: { ...quiet, rebuilt: (e) => rebuilt[node].push(e) },
    });
  const a = store('a', clients[0]);
  const b = store('b', clients[1]);
  try {
    await a.start([]);
    await b.start([]);
    expect(await a.claim(['x'])).toEqual(['claimed']);
    await a.markDone(['x']);
    // a stays alive (heartbeats) but its re-marking fails until the end
    const hooked = clients[0] as MarkHooked & { hset: (...args: unknown[]) => Promise<number> };
    const markLogged = hooked.trbMarkLogged.bind(hooked);
    let aFails = true;
    hooked.trbMarkLogged = (...args) => (aFails ? Promise.reject(new Error('Command timed out')) : markLogged(...args));
    await clients[1].flushall();
    await Promise.all([a.claim(['probe-a']).catch(() => []), b.claim(['probe-b']).catch(() => [])]);
    await new Promise((r) => setTimeout(r, 1500)); // past b's rebuildWaitMs: b waits for a, which is alive
    await expect(b.claim(['x'])).rejects.toMatchObject({ code: 'TRB_DEDUPE_REBUILDING' });
    // Redis loses its memory again just after a's heartbeat: a shows in the new registry only at its next one
    const hset = hooked.hset.bind(hooked);
    const flushed = new Promise<void>((resolve, reject) => {
      hooked.hset = (...args: unknown[]) => {
        const r = hset(...(args as Parameters<typeof hset>));
        if (String(args[0]).endsWith('!nodes')) {
          hooked.hset = hset;
          r.then(() => clients[1].flushall()).then(() => resolve(), reject);
        }
        return r;
      };
    });
    await flushed;
    // b's retried attempt starts past its deadline; until a has re-marked under the new epoch, x stays refused at b
    const until = Date.now() + 3000;
    while (Date.now() < until) {
      await expect(b.claim(['x'])).rejects.toMatchObject({ code: 'TRB_DEDUPE_REBUILDING' });
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(rebuilt.b.filter((e) => e.afterLoss)).toEqual([]);
    aFails = false;
    for (let i = 0; i < 100 && (rebuilt.a.length < 2 || rebuilt.b.length < 2); i++) await new Promise((r) => setTimeout(r, 100));
    expect(rebuilt.b.filter((e) => e.afterLoss)).toEqual([expect.objectContaining({ missingPeers: [] })]);
    expect(await b.claim(['x'])).toEqual(['done']);
  } finally {
    await Promise.all([a.close(), b.close()]);
    for (const c of clients) c.disconnect();
    await redis.stop();
  }
}, 30_000);
