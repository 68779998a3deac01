/**
 * Tag patterns as in Fluentd `<match>`: `a.*` matches one tag part,
 * `a.**` zero or more parts, `{x,y}` alternatives; several patterns separated
 * by spaces match any of them.
 */
export function compileTagPattern(pattern: string): (tag: string) => boolean {
  const alternatives = pattern.trim().split(/\s+/).map(toRegex);
  return (tag) => alternatives.some((re) => re.test(tag));
}

function toRegex(p: string): RegExp {
  let re = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '*' && p[i + 1] === '*') {
      // "a.**" also matches "a"; "**" alone matches anything
      if (re.endsWith('\\.')) re = `${re.slice(0, -2)}(\\..*)?`;
      else re += '.*';
      i++;
    } else if (c === '*') re += '[^.]*';
    else if (c === '{') {
      const close = p.indexOf('}', i);
      re += `(${p
        .slice(i + 1, close)
        .split(',')
        .map((s) => s.replace(/[.+?^$()|[\]\\]/g, '\\$&').replace(/\*/g, '[^.]*'))
        .join('|')})`;
      i = close;
    } else re += c.replace(/[.+?^$()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}
