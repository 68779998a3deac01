import { decodeEntries, encodeEntry } from '@tributary/forward-protocol';
import { IMDS_IDENTITY, startImds, waitFor } from '@tributary/test-kit';
import pino from 'pino';
import { TIME } from '../__fixtures__/run';
import { validFilters } from '../__fixtures__/run';
import { createFilterChain } from '../chain';
import { filterRegistry } from '../registry';

function chainWith(endpoint: string, options: Record<string, unknown>, lines: Array<Record<string, unknown>>) {
  const logger = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l)) });
  const filters = validFilters([{ type: 'aws_metadata', endpoint, timeout_ms: 500, ...options }]);
  return createFilterChain(filters, { hostname: 'h', env: {}, logger }, filterRegistry);
}
const records = (chain: ReturnType<typeof createFilterChain>) =>
  decodeEntries((chain.run('t', encodeEntry(TIME, { m: 1 })) as { entries: Buffer }).entries).map((e) => e.record);

test('adds the identity and selected tags, read with an IMDSv2 token', async () => {
  const imds = await startImds({ Name: 'web-1', team: 'payments' });
  const chain = chainWith(
    imds.endpoint,
    { fields: ['az', 'ec2_instance_id', 'region', 'private_ip', 'ami_id', 'ec2_instance_type'], tags: ['Name', 'missing'] },
    [],
  );
  try {
    await chain.ready();
    expect(records(chain)).toEqual([
      {
        m: 1,
        az: IMDS_IDENTITY.availabilityZone,
        ec2_instance_id: IMDS_IDENTITY.instanceId,
        region: IMDS_IDENTITY.region,
        private_ip: IMDS_IDENTITY.privateIp,
        ami_id: IMDS_IDENTITY.imageId,
        ec2_instance_type: IMDS_IDENTITY.instanceType,
        Name: 'web-1',
      },
    ]);
    // one token for all three reads
    expect(imds.requests).toEqual([
      'PUT /latest/api/token',
      'GET /latest/dynamic/instance-identity/document',
      'GET /latest/meta-data/tags/instance/Name',
      'GET /latest/meta-data/tags/instance/missing',
    ]);
  } finally {
    chain.close();
    await imds.close();
  }
});

test('metadata service down: events flow on unchanged and counted, the failure is logged once, the fields come once it is back', async () => {
  const imds = await startImds();
  imds.setDown(true);
  const lines: Array<Record<string, unknown>> = [];
  const chain = chainWith(imds.endpoint, { fields: ['ec2_instance_id'], retry_ms: 50 }, lines);
  try {
    await chain.ready();
    expect(records(chain)).toEqual([{ m: 1 }]);
    expect(records(chain)).toEqual([{ m: 1 }]);
    expect(chain.counts[0].failed).toBe(2);
    await waitFor(() => imds.requests.length >= 4, 5000, 'retries');
    expect(lines.filter((l) => l.code === 'TRB_FILTER_AWS_METADATA' && l.level === 40)).toHaveLength(1);
    imds.setDown(false);
    await waitFor(() => records(chain)[0].ec2_instance_id === IMDS_IDENTITY.instanceId, 5000, 'the fields after recovery');
    expect(lines.filter((l) => l.code === 'TRB_FILTER_AWS_METADATA')).toHaveLength(2); // the warning and the recovery line
  } finally {
    chain.close();
    await imds.close();
  }
});

test('an endpoint that never answers is bounded by timeout_ms', async () => {
  const { createServer } = await import('node:net');
  const sockets: Array<import('node:net').Socket> = [];
  const silent = createServer((s) => sockets.push(s)); // takes the connection, never answers
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const port = (silent.address() as { port: number }).port;
  const chain = chainWith(`http://127.0.0.1:${port}`, { timeout_ms: 200 }, []);
  const started = Date.now();
  try {
    await chain.ready();
    expect(Date.now() - started).toBeLessThan(2000);
    expect(records(chain)).toEqual([{ m: 1 }]);
  } finally {
    chain.close();
    for (const s of sockets) s.destroy();
    await new Promise((r) => silent.close(r));
  }
});
