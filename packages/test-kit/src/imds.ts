/**
 * A local stand-in for the EC2 instance metadata service speaking IMDSv2:
 * PUT /latest/api/token (the TTL header required) gives a token, and every
 * read must carry it (401 otherwise). Serves the identity document and
 * instance tags; `setDown(true)` answers every request with 503.
 */
import { type Server, createServer } from 'node:http';

export interface ImdsStandIn {
  endpoint: string;
  /** Requests seen, by method and path. */
  requests: string[];
  setDown(down: boolean): void;
  close(): Promise<void>;
}

export const IMDS_IDENTITY = {
  accountId: '123456789012',
  availabilityZone: 'eu-west-1b',
  region: 'eu-west-1',
  instanceId: 'i-0123456789abcdef0',
  instanceType: 'm6g.large',
  privateIp: '10.0.1.23',
  imageId: 'ami-0abcdef1234567890',
};

export async function startImds(tags: Record<string, string> = {}): Promise<ImdsStandIn> {
  const tokens = new Set<string>();
  const requests: string[] = [];
  let down = false;
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const send = (status: number, body = '') => {
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(body);
    };
    if (down) return send(503);
    if (req.url === '/latest/api/token') {
      if (req.method !== 'PUT' || !req.headers['x-aws-ec2-metadata-token-ttl-seconds']) return send(400);
      const token = `token-${tokens.size}`;
      tokens.add(token);
      return send(200, token);
    }
    if (!tokens.has(String(req.headers['x-aws-ec2-metadata-token']))) return send(401);
    if (req.url === '/latest/dynamic/instance-identity/document') return send(200, JSON.stringify(IMDS_IDENTITY));
    const tag = /^\/latest\/meta-data\/tags\/instance\/(.+)$/.exec(req.url ?? '');
    if (tag && Object.hasOwn(tags, decodeURIComponent(tag[1]))) return send(200, tags[decodeURIComponent(tag[1])]);
    return send(404);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    setDown: (d) => {
      down = d;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
