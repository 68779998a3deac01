/**
 * Renders docs/error-codes.md from core's code registry, so the list an
 * operator greps cannot drift from the codes the code emits.
 */
import { errorCodeReference } from '@tributary/core';

const areas: Array<[prefix: string, title: string]> = [
  ['TRB_FWD_', 'Forward protocol'],
  ['TRB_HTTP_', 'HTTP input'],
  ['TRB_BUF_', 'Forwarder buffer'],
  ['TRB_OUT_', 'Forwarder output'],
  ['TRB_DEDUPE_', 'Aggregator dedupe'],
  ['TRB_LOG_', 'Aggregator log'],
  ['TRB_EGRESS_', 'Aggregator egress'],
  ['TRB_SINK_', 'Sinks'],
];

export function renderErrorCodes(): string {
  const all = errorCodeReference();
  const out = [
    '# Error and log codes',
    '',
    '<!-- Generated from packages/core/src/codes.ts by `pnpm docs:config`; do not edit by hand. -->',
    '',
    'Every coded error and log line Tributary emits. The `code` field of a log line, the `code` of a thrown',
    '`TributaryError` and the `code` label of the `*_errors_total` metrics carry these values; they are stable.',
    '',
  ];
  const section = (title: string, rows: typeof all) => {
    out.push(`## ${title}`, '', '| code | meaning |', '|---|---|');
    for (const r of rows) out.push(`| \`${r.code}\` | ${r.meaning.replace(/\|/g, '\\|')} |`);
    out.push('');
  };
  const inArea = (code: string) => areas.some(([p]) => code.startsWith(p));
  section(
    'Configuration and process',
    all.filter((r) => !inArea(r.code)),
  );
  for (const [prefix, title] of areas)
    section(
      title,
      all.filter((r) => r.code.startsWith(prefix)),
    );
  return out.join('\n');
}
