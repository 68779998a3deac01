/**
 * Redis dedupe store (ioredis; standalone or Redis Cluster). Redis holds only
 * dedupe marks, never data.
 *
 * One round trip per batch on the hot path: every chunk's claim is one
 * EVALSHA of a small Lua script, sent with auto-pipelining (per node in
 * cluster mode, since each script touches one key), with a GET of the epoch
 * key in the same pipeline. `markDone` is pipelined the same way.
 *
 *   <prefix><key> "c:<node>:<incarnation>"  claimed, TTL claimTtlMs — busy for every
 *                                    node, the owner included (its first copy is
 *                                    still being written)
 *   <prefix><key> "d:<node>"         written by node, TTL doneTtlMs ("d" alone: a tail
 *                                    key re-marked by another node's rebuild, or an
 *                                    older version's mark; reads the same, never
 *                                    counted as a duplicate)
 *   <prefix><key> "d+:<node>"        the same, set by node's rebuild, which found the
 *                                    key written by another node too and counted it:
 *                                    no other node's rebuild counts it again
 *   <prefix>!epoch                   random id, set by the first node to find it
 *                                    missing; no TTL
 *   <prefix>!nodes                   hash node → "<incarnation> <ms>": heartbeats
 *   <prefix>!rebuilt:<epoch>         hash node → 1: the node re-marked its log tail
 *
 * Redis losing its memory (FLUSHALL, a restart without persistence, a failover
 * to an empty replica, an eviction of the epoch key) shows as a missing or
 * different epoch. Until this node has re-marked the keys its own log holds
 * (RecentKeys) and every peer that was alive before the loss reported the
 * same under the new epoch (or `rebuildWaitMs` passed; under fail_closed only
 * for peers with no heartbeat under the new memory), the marks are not
 * trusted: `fail_closed` refuses claims (no ack; the sender resends later),
 * `fail_open` lets chunks through, counted.
 *
 * A node restarted after kill -9 has a new incarnation. It re-marks its log
 * tail first, then publishes the incarnation: from then on every node (itself
 * included) takes over at once the claims its old incarnation held on chunks
 * that never reached the log, instead of waiting out the claim TTL.
 *
 * In cluster mode the epoch key lives on one shard: a shard that loses its
 * memory alone is not seen (run every shard with a replica and Multi-AZ
 * failover; docs/operations.md).
 */
import { randomBytes } from 'node:crypto';
import { type BackoffOptions, Codes, RetryableError, backoffDelay } from '@tributary/core';
import type { Cluster, Redis } from 'ioredis';
import type { ClaimResult, DedupeStore } from './dedupe-store';
import { RecentKeys } from './recent-keys';

/**
 * ARGV: claim value, claim TTL, the stale claim value this caller may take over ('' for none).
 * A takeover is a compare-and-set on that stale value: a key that no longer
 * holds it (taken over by another node, or gone with Redis's memory) is not
 * taken ('gone' when it is empty; the caller's wait claims it afresh).
 */
const CLAIM = `
local v = redis.call('GET', KEYS[1])
if v then
  if string.sub(v, 1, 1) == 'd' then return 'done' end
  if v ~= ARGV[3] then return v end
elseif ARGV[3] ~= '' then
  return 'gone'
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 'claimed'`;

/**
 * Marks a key this node has in its log done, and says whether another node
 * had written it too: its done mark ("d:<other>"; not "d+:", a duplicate its
 * rebuild counted already), or under fail_open its claim (that node does not
 * trust the marks either, so it goes on and writes; under fail_closed it gives
 * the claim back). A duplicate found, or one this node counted before
 * (ARGV[4]), is marked "d+:<node>", so the other node's rebuild does not
 * count it a second time; this node's own "d+:" mark is kept (after a restart
 * its memory of what it counted is gone, the mark is not).
 * ARGV: "d:<node>", done TTL, '1' under fail_open, '1' when counted before.
 * Returns 1 for a duplicate found, else 0.
 */
const MARK_LOGGED = `
local v = redis.call('GET', KEYS[1])
local node = string.sub(ARGV[1], 3)
local found = false
if v and v ~= ARGV[1] then
  if string.sub(v, 1, 2) == 'd:' then
    found = true
  elseif ARGV[3] == '1' and string.sub(v, 1, 2) == 'c:' then
    found = string.match(v, '^c:(.*):[^:]*$') ~= node
  end
end
local mark = ARGV[1]
if found or ARGV[4] == '1' then mark = 'd+:' .. node end
if v == 'd+:' .. node then mark = v end
redis.call('SET', KEYS[1], mark, 'PX', ARGV[2])
if found then return 1 end
return 0`;

/**
 * Marks done a key of the shared log's tail that this node did not append
 * (another node did, maybe a dead one): "d", which reads done and is never
 * counted as a duplicate; a done mark of the node that wrote it is kept (its
 * TTL renewed), so that node's rebuild still finds a duplicate of its own.
 * ARGV: done TTL.
 */
const MARK_TAIL = `
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 1) == 'd' then return redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
redis.call('SET', KEYS[1], 'd', 'PX', ARGV[1])
return 1`;

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/** How often a node writes its heartbeat, reads its peers' and checks the epoch with no traffic. */
const HEARTBEAT_MS = 2000;
/** A peer whose heartbeat is older than this when Redis is lost is not waited for. */
const PEER_LIVE_MS = 15_000;
/** Least time between two registry reads made because a claim was busy. */
const REGISTRY_REFRESH_MS = 500;
/** Keys re-marked per pipelined wave during a rebuild. */
const REBUILD_WAVE = 1000;
/** Between two failed rebuild attempts. */
const REBUILD_BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 5000 };

type ScriptClient = (Redis | Cluster) & {
  trbClaim(key: string, value: string, ttlMs: number, takeover: string): Promise<string>;
  trbRelease(key: string, value: string): Promise<number>;
  trbMarkLogged(key: string, value: string, ttlMs: number, failOpen: '0' | '1', countedBefore: '0' | '1'): Promise<number>;
  trbMarkTail(key: string, ttlMs: number): Promise<number>;
};

export interface RebuildReport {
  /** true after a loss of Redis's memory, false at start. */
  afterLoss: boolean;
  /** Keys of this node's log re-marked done. */
  keys: number;
  /**
   * After a loss: keys of this node's log that another node had written too
   * (duplicates), each counted by one node only, once.
   */
  duplicates: number;
  /** Peers that did not report their own rebuild within rebuildWaitMs. */
  missingPeers: string[];
  ms: number;
}

/** What the store reports; the aggregator turns each into a metric and a log line. */
export interface RedisDedupeEvents {
  /** A Redis call failed. */
  error(err: Error): void;
  /** Redis lost its memory; a rebuild starts. */
  stateLost(reason: string): void;
  /** A rebuild attempt failed; it is retried with backoff. */
  rebuildFailed(err: Error): void;
  /** fail_closed: past rebuild_wait_ms, these live peers have not reported re-marking their logs; the rebuild waits for them (said once per attempt). */
  waitingForPeers(nodes: string[]): void;
  rebuilt(report: RebuildReport): void;
  /** fail_open: chunks written while the marks were not rebuilt (possible duplicates). */
  unverified(chunks: number): void;
  /** Claims held by a dead incarnation of a node, taken over. */
  staleClaims(n: number): void;
}

export interface RedisDedupeOptions {
  client: Redis | Cluster;
  /** `close` disconnects the client only when the store made it (default); an embedder's client stays theirs. */
  ownsClient?: boolean;
  /** This node's id: stable across restarts, unique among live nodes. */
  node: string;
  prefix: string;
  claimTtlMs: number;
  doneTtlMs: number;
  /** fail_open: Redis errors and unrebuilt marks let chunks through (at-least-once); fail_closed: they stop acks. */
  onUnavailable: 'fail_open' | 'fail_closed';
  /** How long a rebuild waits for its peers (and `start` for its own first rebuild). */
  rebuildWaitMs: number;
  /** Most keys of the log kept to rebuild from. */
  rebuildMaxKeys: number;
  /** The shared log's newest keys (Kafka): re-marked on a rebuild beside this node's own. */
  logTail?: () => Promise<string[]>;
  events: RedisDedupeEvents;
}

export const DedupeErrorCode = {
  Unavailable: Codes.TRB_DEDUPE_UNAVAILABLE,
  Rebuilding: Codes.TRB_DEDUPE_REBUILDING,
  StateLost: Codes.TRB_DEDUPE_STATE_LOST,
} as const;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

export class RedisDedupe implements DedupeStore {
  readonly kind = 'redis' as const;
  private readonly client: ScriptClient;
  private readonly incarnation = randomBytes(6).toString('hex');
  private readonly claimValue: string;
  private readonly doneValue: string;
  private readonly recent: RecentKeys;
  /** The epoch this node's marks are rebuilt under; null while they are not (start, or after a loss). */
  private epoch: string | null = null;
  private rebuilding: Promise<void> | null = null;
  private readonly peers = new Map<string, { incarnation: string; seenAt: number }>();
  private registryReadAt = 0;
  private heartbeat: NodeJS.Timeout | null = null;
  /** Keys written to the log whose done mark failed: marked again on the next heartbeat. */
  private unmarked: string[] = [];
  /**
   * Keys this node handed out as claimed and not yet marked done or released
   * (how many times: after a loss a resend to this node may claim a key its
   * first copy is still being written under): chunks being written. A loss
   * wipes their claims while the writes go on; the rebuild claims them again,
   * so a resend to a peer waits instead of being written a second time. The
   * claim value is per node, so a claim of a key in flight is never given back
   * in Redis until its last holder lets go.
   */
  private readonly inFlight = new Map<string, number>();
  /**
   * Keys this node's rebuilds counted as duplicates (the newest
   * rebuildMaxKeys): a later attempt or rebuild neither counts them again
   * nor leaves them for another node to count (it marks them "d+:").
   */
  private readonly counted = new Set<string>();
  private closed = false;

  constructor(private readonly options: RedisDedupeOptions) {
    const c = options.client as ScriptClient;
    c.defineCommand('trbClaim', { numberOfKeys: 1, lua: CLAIM });
    c.defineCommand('trbRelease', { numberOfKeys: 1, lua: RELEASE });
    c.defineCommand('trbMarkLogged', { numberOfKeys: 1, lua: MARK_LOGGED });
    c.defineCommand('trbMarkTail', { numberOfKeys: 1, lua: MARK_TAIL });
    this.client = c;
    this.claimValue = `c:${options.node}:${this.incarnation}`;
    this.doneValue = `d:${options.node}`;
    this.recent = new RecentKeys(options.rebuildMaxKeys, options.doneTtlMs);
  }

  private key(k: string): string {
    return `${this.options.prefix}${k}`;
  }

  private get epochKey(): string {
    return `${this.options.prefix}!epoch`;
  }

  private get nodesKey(): string {
    return `${this.options.prefix}!nodes`;
  }

  private rebuiltKey(epoch: string): string {
    return `${this.options.prefix}!rebuilt:${epoch}`;
  }

  /**
   * Re-marks the log's keys and publishes this incarnation. Waits at most
   * `rebuildWaitMs`: a Redis that is down must not keep the node from
   * starting; the rebuild then goes on in the background.
   */
  async start(logged: readonly string[]): Promise<void> {
    this.recent.add(logged.slice(-this.options.rebuildMaxKeys));
    this.beginRebuild(false);
    await Promise.race([this.rebuilding, sleep(this.options.rebuildWaitMs)]);
  }

  async claim(keys: string[]): Promise<ClaimResult[]> {
    let results: string[];
    let epoch: string | null;
    try {
      [results, epoch] = await this.claimRound(
        keys,
        keys.map(() => ''),
      );
    } catch (err) {
      this.options.events.error(err as Error);
      // A timed-out claim may still run (ioredis queues it until Redis is back): give back whatever it took.
      void this.giveBack(keys);
      if (this.options.onUnavailable === 'fail_closed') {
        throw new RetryableError(
          DedupeErrorCode.Unavailable,
          `Redis is unavailable and dedupe is fail_closed: ${(err as Error).message}.`,
          err,
        );
      }
      return this.track(
        keys,
        keys.map(() => 'claimed'),
      );
    }
    if (this.epoch !== null && epoch === this.epoch) epoch = await this.takeOverStale(keys, results, epoch);
    if (this.epoch === null || epoch !== this.epoch) {
      if (this.epoch !== null) this.lost(epoch);
      return this.track(keys, await this.unverified(keys, results));
    }
    return this.track(
      keys,
      results.map((v) => (v === 'claimed' || v === 'done' ? v : 'busy')),
    );
  }

  /** Records the keys handed out as claimed (in flight until `markDone` or `release`). */
  private track(keys: string[], results: ClaimResult[]): ClaimResult[] {
    results.forEach((r, i) => {
      if (r === 'claimed') this.inFlight.set(keys[i], (this.inFlight.get(keys[i]) ?? 0) + 1);
    });
    return results;
  }

  /** One pipelined round trip: every claim, then the epoch (read after the claims, so a loss before or during them shows). */
  private async claimRound(keys: string[], takeover: string[]): Promise<[string[], string | null]> {
    const claims = keys.map((k, i) => this.client.trbClaim(this.key(k), this.claimValue, this.options.claimTtlMs, takeover[i]));
    return Promise.all([Promise.all(claims), this.client.get(this.epochKey)]);
  }

  /** The marks are not rebuilt: fail_closed gives the claims back and refuses; fail_open goes on, counted. */
  private async unverified(keys: string[], results: string[]): Promise<ClaimResult[]> {
    const mine = keys.filter((_, i) => results[i] === 'claimed');
    if (this.options.onUnavailable === 'fail_closed') {
      await this.giveBack(mine);
      throw new RetryableError(
        DedupeErrorCode.Rebuilding,
        'Redis lost its dedupe marks and they are being rebuilt from the logs; dedupe is fail_closed, so nothing is acked until then.',
      );
    }
    if (mine.length) this.options.events.unverified(mine.length);
    return results.map((v) => (v === 'claimed' || v === 'done' ? v : 'busy'));
  }

  /**
   * Claims held by a dead incarnation (a node that restarted) are taken over
   * in a second round trip, each a compare-and-set on the stale value read in
   * the first. Returns the epoch read after the takeovers (`epoch`, read after
   * the first round, when there was none): the caller trusts the takeovers
   * only under an unchanged epoch, as it does the first round's claims.
   */
  private async takeOverStale(keys: string[], results: string[], epoch: string | null): Promise<string | null> {
    const busy = () => results.flatMap((v, i) => (v !== 'claimed' && v !== 'done' ? [i] : []));
    if (busy().length === 0) return epoch;
    if (Date.now() - this.registryReadAt >= REGISTRY_REFRESH_MS) await this.readRegistry();
    const stale = busy().filter((i) => this.isStale(results[i]));
    if (stale.length === 0) return epoch;
    try {
      const [again, epochAfter] = await this.claimRound(
        stale.map((i) => keys[i]),
        stale.map((i) => results[i]),
      );
      stale.forEach((i, n) => {
        results[i] = again[n];
      });
      const taken = again.filter((v) => v === 'claimed').length;
      if (taken && epochAfter === this.epoch) this.options.events.staleClaims(taken);
      return epochAfter;
    } catch (err) {
      this.options.events.error(err as Error); // they stay busy; the caller's wait retries
      void this.giveBack(stale.map((i) => keys[i]));
      return epoch;
    }
  }

  private isStale(value: string): boolean {
    if (!value.startsWith('c:')) return false;
    const cut = value.lastIndexOf(':');
    if (cut <= 2) return false;
    const node = value.slice(2, cut);
    const incarnation = value.slice(cut + 1);
    if (node === this.options.node) return incarnation !== this.incarnation;
    const peer = this.peers.get(node);
    return peer !== undefined && peer.incarnation !== incarnation;
  }

  /** Never rejects: keys whose mark failed are marked again by the heartbeat (until then resends of them stay busy). */
  async markDone(keys: string[]): Promise<void> {
    this.recent.add(keys);
    for (const k of keys) this.letGo(k);
    await this.mark(keys);
  }

  /**
   * Sets the done marks; the heartbeat's retry of failed marks comes here,
   * not through `markDone`, so it does not let go a second time of a key
   * that a later write of this node holds in flight.
   */
  private async mark(keys: string[]): Promise<void> {
    try {
      await Promise.all(keys.map((k) => this.client.set(this.key(k), this.doneValue, 'PX', this.options.doneTtlMs)));
    } catch (err) {
      this.options.events.error(err as Error);
      this.unmarked.push(...keys);
      if (this.unmarked.length > this.options.rebuildMaxKeys) this.unmarked.splice(0, this.unmarked.length - this.options.rebuildMaxKeys);
    }
  }

  /** For keys `claim` handed out as claimed. */
  async release(keys: string[]): Promise<void> {
    for (const k of keys) this.letGo(k);
    await this.giveBack(keys);
  }

  private letGo(key: string): void {
    const n = this.inFlight.get(key) ?? 0;
    if (n <= 1) this.inFlight.delete(key);
    else this.inFlight.set(key, n - 1);
  }

  /** Deletes this node's claims on the keys, except those a write of this node still holds. */
  private async giveBack(keys: string[]): Promise<void> {
    const free = keys.filter((k) => !this.inFlight.has(k));
    try {
      await Promise.all(free.map((k) => this.client.trbRelease(this.key(k), this.claimValue)));
    } catch (err) {
      this.options.events.error(err as Error);
    }
  }

  problem(): string | null {
    return this.rebuilding ? `dedupe marks are being rebuilt after Redis lost them (${this.options.onUnavailable})` : null;
  }

  private lost(seen: string | null): void {
    if (this.rebuilding) return;
    this.epoch = null;
    this.options.events.stateLost(seen === null ? 'the epoch key is gone' : 'the epoch key changed');
    this.beginRebuild(true);
  }

  private beginRebuild(afterLoss: boolean): void {
    if (this.rebuilding || this.closed) return;
    this.rebuilding = this.rebuild(afterLoss).finally(() => {
      this.rebuilding = null;
    });
  }

  /** Never rejects: failures are reported and retried with backoff until it succeeds or the store closes. */
  private async rebuild(afterLoss: boolean): Promise<void> {
    const started = Date.now();
    const peers = afterLoss ? this.livePeers() : [];
    // Across attempts: a failed attempt's re-marks overwrote the other nodes' marks, so a retry cannot count those keys again.
    const found = { duplicates: 0 };
    for (let attempt = 0; !this.closed; attempt++) {
      const attemptStarted = Date.now();
      try {
        await this.client.set(this.epochKey, randomBytes(8).toString('hex'), 'NX');
        const epoch = await this.client.get(this.epochKey);
        if (epoch === null) throw new Error('the epoch key vanished while it was being set');
        const keys = await this.markLogged(afterLoss ? found : null);
        await this.register();
        await this.client.hset(this.rebuiltKey(epoch), this.options.node, '1');
        await this.client.pexpire(this.rebuiltKey(epoch), this.options.doneTtlMs);
        await this.readRegistry();
        const missingPeers = afterLoss ? await this.waitForPeers(epoch, peers, started, attemptStarted) : [];
        if ((await this.client.get(this.epochKey)) !== epoch) throw new Error('Redis lost its memory again during the rebuild');
        this.epoch = epoch;
        this.startHeartbeat();
        this.options.events.rebuilt({ afterLoss, keys, duplicates: found.duplicates, missingPeers, ms: Date.now() - started });
        return;
      } catch (err) {
        if (this.closed) return;
        this.options.events.rebuildFailed(err as Error);
        await sleep(backoffDelay(attempt, REBUILD_BACKOFF));
      }
    }
  }

  /** Re-marks the log's keys done; returns how many. Adds to `found` (after a loss) the duplicates not counted before. */
  private async markLogged(found: { duplicates: number } | null): Promise<number> {
    const own = this.recent.snapshot();
    let others: string[] = [];
    if (this.options.logTail) {
      // A shared log (Kafka) also holds what other nodes wrote, the dead ones included: done, but not this node's duplicates.
      try {
        const mine = new Set(own);
        others = [...new Set(await this.options.logTail())].filter((k) => !mine.has(k));
      } catch (err) {
        this.options.events.rebuildFailed(
          new Error(`reading the log's tail failed, rebuilding from this node's own keys: ${(err as Error).message}`),
        );
      }
    }
    const failOpen = this.options.onUnavailable === 'fail_open' ? '1' : '0';
    await this.inWaves(own, async (wave) => {
      // Settled, not all: a wave's failed command must not drop what its other commands found (they overwrote those marks).
      const results = await Promise.allSettled(
        wave.map((k) =>
          this.client.trbMarkLogged(this.key(k), this.doneValue, this.options.doneTtlMs, failOpen, this.counted.has(k) ? '1' : '0'),
        ),
      );
      for (let n = 0; n < wave.length && found !== null; n++) {
        const r = results[n];
        if (r.status === 'fulfilled' && r.value === 1 && !this.counted.has(wave[n])) {
          this.counted.add(wave[n]);
          found.duplicates++;
        }
      }
      this.forgetOldestCounted();
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    });
    await this.inWaves(others, async (wave) => {
      await Promise.all(wave.map((k) => this.client.trbMarkTail(this.key(k), this.options.doneTtlMs)));
    });
    await this.reclaimInFlight();
    return own.length + others.length;
  }

  /** Runs `fn` on REBUILD_WAVE keys at a time, one wave after the other, until done or the store closes. */
  private async inWaves(keys: readonly string[], fn: (wave: string[]) => Promise<void>): Promise<void> {
    for (let i = 0; i < keys.length && !this.closed; i += REBUILD_WAVE) await fn(keys.slice(i, i + REBUILD_WAVE));
  }

  /**
   * Claims again the chunks this node is still writing (claimed before the
   * loss, not yet in the log, so not among the keys re-marked): until their
   * done mark, a resend elsewhere finds them busy. A key released meanwhile
   * is given back again (its release may have run before this claim; the
   * same connection orders the two, and a done mark set first is kept).
   */
  private async reclaimInFlight(): Promise<void> {
    await this.inWaves([...this.inFlight.keys()], async (wave) => {
      await Promise.all(wave.map((k) => this.client.trbClaim(this.key(k), this.claimValue, this.options.claimTtlMs, '')));
      const gone = wave.filter((k) => !this.inFlight.has(k));
      if (gone.length) await Promise.all(gone.map((k) => this.client.trbRelease(this.key(k), this.claimValue)));
    });
  }

  private forgetOldestCounted(): void {
    for (const k of this.counted) {
      if (this.counted.size <= this.options.rebuildMaxKeys) return;
      this.counted.delete(k);
    }
  }

  /**
   * Waits until every expected peer reported its rebuild under `epoch`, or
   * the deadline. Expected: the peers alive before the loss, and every node
   * whose heartbeat appears in the registry meanwhile (after a loss the
   * registry holds only nodes alive since; waiting one heartbeat period lets a
   * peer this node had not met yet show up).
   *
   * Under fail_closed the deadline lets go only of peers that look dead (no
   * heartbeat within PEER_LIVE_MS under the new memory, two and a half
   * heartbeat periods into this attempt, so one failed heartbeat is not taken
   * for death; a retried attempt, after Redis lost its memory again, may
   * start past the deadline): a live peer whose
   * re-marking is slow or keeps failing (commands timing out on a loaded
   * machine) may hold chunks in its log whose acks were lost; trusting the
   * marks without them would write their resends twice. Waiting for it is
   * said once per attempt (waitingForPeers). Throws when the epoch changes
   * meanwhile (the peers then report under the new one).
   */
  private async waitForPeers(epoch: string, known: string[], started: number, attemptStarted: number): Promise<string[]> {
    const expected = new Set(known);
    const settle = started + HEARTBEAT_MS * 1.5;
    const deadline = started + this.options.rebuildWaitMs;
    const failClosed = this.options.onUnavailable === 'fail_closed';
    // The registry of this attempt's memory (empty after a loss) holds a live peer after its next heartbeat or the one after.
    const registered = attemptStarted + HEARTBEAT_MS * 2.5;
    let said = false;
    let missing = [...expected];
    while (!this.closed) {
      const [reported, nodes, epochNow] = await Promise.all([
        this.client.hgetall(this.rebuiltKey(epoch)),
        this.client.hgetall(this.nodesKey),
        this.client.get(this.epochKey),
      ]);
      if (epochNow !== epoch) throw new Error('Redis lost its memory again while this node waited for its peers');
      const now = Date.now();
      const alive = (node: string) => nodes[node] !== undefined && now - Number(nodes[node].split(' ')[1]) <= PEER_LIVE_MS;
      for (const node of Object.keys(nodes)) if (node !== this.options.node && alive(node)) expected.add(node);
      missing = [...expected].filter((p) => reported[p] === undefined);
      if (missing.length === 0 && now >= settle) break;
      // under fail_closed not before a live peer's heartbeat had time to show in this attempt's registry
      if (now >= (failClosed ? Math.max(deadline, registered) : deadline)) {
        const waited = failClosed ? missing.filter(alive) : [];
        if (waited.length === 0) break;
        if (!said) {
          said = true;
          this.options.events.waitingForPeers(waited);
        }
      }
      await sleep(200);
    }
    return missing;
  }

  private livePeers(): string[] {
    const now = Date.now();
    return [...this.peers].filter(([node, p]) => node !== this.options.node && now - p.seenAt <= PEER_LIVE_MS).map(([node]) => node);
  }

  private async register(): Promise<void> {
    await this.client.hset(this.nodesKey, this.options.node, `${this.incarnation} ${Date.now()}`);
  }

  private async readRegistry(): Promise<void> {
    try {
      const nodes = await this.client.hgetall(this.nodesKey);
      this.registryReadAt = Date.now();
      for (const [node, v] of Object.entries(nodes)) {
        const [incarnation, at] = v.split(' ');
        this.peers.set(node, { incarnation, seenAt: Number(at) });
      }
    } catch (err) {
      this.options.events.error(err as Error);
    }
  }

  private startHeartbeat(): void {
    if (this.heartbeat || this.closed) return;
    this.heartbeat = setInterval(() => void this.beat(), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /** Heartbeat, peers, and the epoch check when no claim comes to make it. Never rejects. */
  private async beat(): Promise<void> {
    try {
      const [epoch] = await Promise.all([this.client.get(this.epochKey), this.register()]);
      await this.readRegistry();
      if (this.epoch !== null && epoch !== this.epoch) this.lost(epoch);
      if (this.unmarked.length) await this.mark(this.unmarked.splice(0));
    } catch (err) {
      this.options.events.error(err as Error);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.options.ownsClient ?? true) this.client.disconnect();
  }
}
