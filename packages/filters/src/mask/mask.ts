/**
 * The mask filter's logic. Every pattern is a global regex; a match is
 * replaced whole, or only its `secret` group where the pattern has one
 * (`Bearer <token>` keeps `Bearer `). A string is scanned once per pattern.
 */
import { createHmac } from 'node:crypto';
import { type Path, getPath, parseKey, setPath } from '../record-accessor';
import { compileRegex } from '../regex';
import type { Filter, FilterContext } from '../spec';
import type { MaskConfig } from './config';

export const BUILTIN_NAMES = ['credit_card', 'email', 'aws_access_key', 'bearer_token'] as const;

interface Pattern {
  re: RegExp;
  /** A match is masked only when this holds (the Luhn check). */
  valid?: (match: string) => boolean;
}

/** Luhn (ISO/IEC 7812-1) over the digits of `s`. */
export function luhn(s: string): boolean {
  let sum = 0;
  let double = false;
  let digits = 0;
  for (let i = s.length - 1; i >= 0; i--) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) continue;
    let d = c;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
    digits++;
  }
  return digits >= 13 && digits <= 19 && sum % 10 === 0;
}

const BUILTINS: Record<(typeof BUILTIN_NAMES)[number], Pattern> = {
  // 13..19 digits, single spaces or dashes between them; not part of a longer number
  credit_card: { re: /(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d])/g, valid: luhn },
  email: { re: /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g },
  // AWS access key ids: a four-letter prefix and 16 upper-case letters or digits (IAM "Unique identifiers")
  aws_access_key: { re: /(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}(?![A-Z0-9])/g },
  bearer_token: { re: /(?<=\bBearer\s+)[A-Za-z0-9\-._~+/]+=*/gi },
};

export function createMask(config: MaskConfig, ctx: FilterContext): Filter {
  const patterns: Pattern[] = [
    ...(config.builtin ?? []).map((name) => BUILTINS[name]),
    ...(config.patterns ?? []).map((p) => ({ re: compileRegex(p, 'g') })),
  ];
  const key = config.hmac_key_env === undefined ? undefined : ctx.env[config.hmac_key_env];
  const replacement = config.replacement ?? '[REDACTED]';
  const replace = key ? (match: string) => `hmac:${createHmac('sha256', key).update(match).digest('hex').slice(0, 16)}` : () => replacement;

  const maskString = (s: string): string => {
    let out = s;
    for (const p of patterns) {
      p.re.lastIndex = 0;
      if (!p.re.test(out)) continue;
      p.re.lastIndex = 0;
      out = out.replace(p.re, (m) => (p.valid && !p.valid(m) ? m : replace(m)));
    }
    return out;
  };
  const maskValue = (v: unknown): unknown => {
    if (typeof v === 'string') return maskString(v);
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) v[i] = maskValue(v[i]);
      return v;
    }
    if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array) && !(v instanceof Date)) {
      const o = v as Record<string, unknown>;
      for (const k of Object.keys(o)) o[k] = maskValue(o[k]);
      return o;
    }
    return v;
  };

  const keys: Path[] | null = config.keys?.length ? config.keys.map(parseKey) : null;
  return {
    changes: true,
    apply(event) {
      const r = event.record;
      if (!keys) return maskValue(r) as Record<string, unknown>;
      for (const path of keys) {
        const v = getPath(r, path);
        if (v !== undefined) setPath(r, path, maskValue(v));
      }
      return r;
    },
  };
}
