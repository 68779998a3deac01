import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderConfigReference } from './config-reference';

test('docs/configuration.md is what the schemas say (run `pnpm docs:config` after changing a schema)', () => {
  const committed = readFileSync(join(__dirname, '..', '..', '..', '..', 'docs', 'configuration.md'), 'utf8');
  expect(committed).toBe(renderConfigReference());
});

test('every key is documented', () => {
  const text = renderConfigReference();
  for (const key of [
    '`buffer.overflow`',
    '`output.servers[].standby`',
    '`dedupe.on_unavailable`',
    '`log.kafka.replication_factor`',
    '`sinks[].delivery_stream`',
  ]) {
    expect(text).toContain(key);
  }
  expect(text).not.toMatch(/\| `[^`]+` \| [^|]+ \| [^|]* \| {2}\|/); // no empty description column
});
