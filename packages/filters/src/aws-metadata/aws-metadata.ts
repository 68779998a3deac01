/** The aws_metadata filter's logic: the metadata is read in the background and added from memory. */
import { Codes } from '@tributary/core';
import type { Filter, FilterContext } from '../spec';
import type { AwsMetadataConfig } from './config';
import { ImdsClient } from './imds';

/** Field names as Fluent Bit's aws filter writes them, and where the identity document has each. */
const IDENTITY = {
  az: 'availabilityZone',
  ec2_instance_id: 'instanceId',
  region: 'region',
  ec2_instance_type: 'instanceType',
  private_ip: 'privateIp',
  ami_id: 'imageId',
  account_id: 'accountId',
} as const;
export const IDENTITY_FIELDS = Object.keys(IDENTITY) as (keyof typeof IDENTITY)[];

export function createAwsMetadata(config: AwsMetadataConfig, ctx: FilterContext): Filter {
  const client = new ImdsClient(config.endpoint ?? 'http://169.254.169.254', config.timeout_ms ?? 1000);
  const fields = config.fields ?? [];
  const tags = config.tags ?? [];
  let values: ReadonlyArray<[string, string]> | null = null;
  let failing = false;
  let timer: NodeJS.Timeout | null = null;
  let closed = false;

  const read = async (): Promise<Array<[string, string]>> => {
    const doc = JSON.parse((await client.get('/latest/dynamic/instance-identity/document')) ?? '{}') as Record<string, unknown>;
    const out: Array<[string, string]> = [];
    for (const f of fields) if (typeof doc[IDENTITY[f]] === 'string') out.push([f, doc[IDENTITY[f]] as string]);
    for (const t of tags) {
      const v = await client.get(`/latest/meta-data/tags/instance/${encodeURIComponent(t)}`);
      if (v !== null) out.push([t, v]);
    }
    return out;
  };

  /** One read, then the next one scheduled; never rejects (its failure is logged once and retried). */
  const refresh = async (): Promise<void> => {
    let next = config.refresh_ms ?? 300000;
    try {
      values = await read();
      if (failing)
        ctx.logger.info({ code: Codes.TRB_FILTER_AWS_METADATA }, 'The aws_metadata filter reads the instance metadata service again.');
      failing = false;
    } catch (err) {
      next = config.retry_ms ?? 5000;
      if (!failing) {
        ctx.logger.warn(
          { code: Codes.TRB_FILTER_AWS_METADATA, err: (err as Error).message },
          `The aws_metadata filter could not read the instance metadata service at ${config.endpoint} (${(err as Error).message}); events flow on without its fields (counted as failed) and it retries every ${next} ms (${Codes.TRB_FILTER_AWS_METADATA}).`,
        );
      }
      failing = true;
    }
    if (closed) return;
    timer = setTimeout(() => void refresh(), next);
    timer.unref();
  };
  const first = refresh();

  return {
    changes: true,
    ready: () => first,
    apply(event, counts) {
      if (!values) {
        counts.failed++;
        return event.record;
      }
      for (const [k, v] of values) event.record[k] = v;
      return event.record;
    },
    applyRaw(record, _event, counts) {
      if (!values) counts.failed++;
      else for (const [k, v] of values) record.set(k, v);
      return true;
    },
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
    },
  };
}
