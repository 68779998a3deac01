/**
 * The IMDSv2 session protocol (EC2 User Guide, "Use the Instance Metadata
 * Service to access instance metadata"): PUT /latest/api/token with the
 * TTL header gives a token; every read sends it in a header. A 401 means
 * the token expired: get a new one and read again.
 */

/** Token lifetime asked for; at most 21600 s (six hours). */
export const TOKEN_TTL_SECONDS = 21600;
const TTL_HEADER = 'X-aws-ec2-metadata-token-ttl-seconds';
const TOKEN_HEADER = 'X-aws-ec2-metadata-token';

export class ImdsClient {
  private token: { value: string; expires: number } | null = null;

  constructor(
    private readonly endpoint: string,
    private readonly timeoutMs: number,
  ) {}

  private async request(path: string, init: RequestInit): Promise<Response> {
    return fetch(`${this.endpoint}${path}`, { ...init, signal: AbortSignal.timeout(this.timeoutMs) });
  }

  private async session(): Promise<string> {
    if (this.token && this.token.expires > Date.now()) return this.token.value;
    const res = await this.request('/latest/api/token', { method: 'PUT', headers: { [TTL_HEADER]: String(TOKEN_TTL_SECONDS) } });
    if (!res.ok) throw new Error(`the token request answered HTTP ${res.status}`);
    // renewed a minute early, so a token never expires between two reads
    this.token = { value: await res.text(), expires: Date.now() + (TOKEN_TTL_SECONDS - 60) * 1000 };
    return this.token.value;
  }

  /** The text at `path`, or null when the service has none there (404). */
  async get(path: string): Promise<string | null> {
    for (let attempt = 0; ; attempt++) {
      const res = await this.request(path, { headers: { [TOKEN_HEADER]: await this.session() } });
      if (res.status === 401 && attempt === 0) {
        this.token = null;
        continue;
      }
      if (res.status === 404) return null;
      if (!res.ok) throw new Error(`${path} answered HTTP ${res.status}`);
      return res.text();
    }
  }
}
