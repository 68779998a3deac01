/**
 * Redis dedupe store (ioredis; standalone or Redis Cluster). Redis holds only
 * dedupe marks, never data.
 *
 * One round trip per batch on the hot path: every chunk's claim is one
 * EVALSHA of a small Lua script, sent with auto-pipelining (per node in
 * cluster mode, since each script touches one key). `markDone` is pipelined
 * the same way.
 *
 *   value "c:<owner>"  claimed by owner, TTL claimTtlMs — busy for every node,
 *                      the owner included (its first copy is still being written)
 *   value "d"          written, TTL doneTtlMs
 */
import { RetryableError } from '@tributary/core';
import type { Cluster, Redis } from 'ioredis';
import type { ClaimResult, DedupeStore } from './dedupe-store';

const CLAIM = `
local v = redis.call('GET', KEYS[1])
if v == 'd' then return 'done' end
if v then return 'busy' end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 'claimed'`;

const RECOVER = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], 'd', 'PX', ARGV[2]) return 1 end
return 0`;

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

type ScriptClient = (Redis | Cluster) & {
  trbClaim(key: string, owner: string, ttlMs: number): Promise<string>;
  trbRelease(key: string, owner: string): Promise<number>;
  trbRecover(key: string, owner: string, ttlMs: number): Promise<number>;
};

export interface RedisDedupeOptions {
  client: Redis | Cluster;
  owner: string;
  prefix: string;
  claimTtlMs: number;
  doneTtlMs: number;
  /** fail_open: Redis errors let chunks through (at-least-once); fail_closed: they stop acks. */
  onUnavailable: 'fail_open' | 'fail_closed';
  onError(err: Error): void;
}

export const DedupeErrorCode = { Unavailable: 'TRB_DEDUPE_UNAVAILABLE' } as const;

export class RedisDedupe implements DedupeStore {
  readonly kind = 'redis' as const;
  private readonly client: ScriptClient;
  private readonly owner: string;

  constructor(private readonly options: RedisDedupeOptions) {
    const c = options.client as ScriptClient;
    c.defineCommand('trbClaim', { numberOfKeys: 1, lua: CLAIM });
    c.defineCommand('trbRelease', { numberOfKeys: 1, lua: RELEASE });
    c.defineCommand('trbRecover', { numberOfKeys: 1, lua: RECOVER });
    this.client = c;
    this.owner = `c:${options.owner}`;
  }

  private key(k: string): string {
    return `${this.options.prefix}${k}`;
  }

  async claim(keys: string[]): Promise<ClaimResult[]> {
    try {
      const res = await Promise.all(keys.map((k) => this.client.trbClaim(this.key(k), this.owner, this.options.claimTtlMs)));
      return res as ClaimResult[];
    } catch (err) {
      this.options.onError(err as Error);
      if (this.options.onUnavailable === 'fail_closed') {
        throw new RetryableError(
          DedupeErrorCode.Unavailable,
          `Redis is unavailable and dedupe is fail_closed: ${(err as Error).message}.`,
          err,
        );
      }
      return keys.map(() => 'claimed');
    }
  }

  async recover(keys: string[]): Promise<number> {
    const res = await Promise.all(keys.map((k) => this.client.trbRecover(this.key(k), this.owner, this.options.doneTtlMs)));
    return res.reduce((n: number, x) => n + Number(x), 0);
  }

  async markDone(keys: string[]): Promise<void> {
    try {
      await Promise.all(keys.map((k) => this.client.set(this.key(k), 'd', 'PX', this.options.doneTtlMs)));
    } catch (err) {
      this.options.onError(err as Error);
    }
  }

  async release(keys: string[]): Promise<void> {
    try {
      await Promise.all(keys.map((k) => this.client.trbRelease(this.key(k), this.owner)));
    } catch (err) {
      this.options.onError(err as Error);
    }
  }

  async close(): Promise<void> {
    this.client.disconnect();
  }
}
