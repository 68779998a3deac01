/** Config keys and client options shared by the AWS sinks. */

export const awsClientProperties = {
  region: { type: 'string', default: 'us-east-1', description: 'AWS region.' },
  endpoint: { type: 'string', description: 'Endpoint override (LocalStack, MinIO, tests).' },
  access_key_id: { type: 'string', description: 'Static credentials; omit to use the default AWS credential chain (instance role).' },
  secret_access_key: { type: 'string', description: 'Secret for access_key_id.' },
} as const;

export function awsClientOptions(s: { region: string; endpoint?: string; access_key_id?: string; secret_access_key?: string }) {
  return {
    region: s.region,
    endpoint: s.endpoint,
    credentials:
      s.access_key_id && s.secret_access_key ? { accessKeyId: s.access_key_id, secretAccessKey: s.secret_access_key } : undefined,
  };
}
