/** The throttle filter's logic: a count per group in the current window of event time. */
import { type Path, getPath, getRawPath, parseKey } from '../record-accessor';
import { asText } from '../regex';
import type { Filter } from '../spec';
import type { ThrottleConfig } from './config';

export function createThrottle(config: ThrottleConfig): Filter {
  const keys = (config.group_keys ?? []).map(parseKey);
  const windowMs = config.window_ms ?? 1000;
  const maxGroups = config.max_groups ?? 10000;
  /** Group → its window (start, ms of event time) and the events let through in it; insertion order = least recently started. */
  const groups = new Map<string, { window: number; count: number }>();
  /** Counts the event in its group's window; false when the window is full. */
  const admit = (tag: string, time: number, get: (p: Path) => unknown): boolean => {
    const group = keys.length ? keys.map((p) => asText(get(p))).join('\u0000') : tag;
    const window = Math.floor((time * 1000) / windowMs);
    let g = groups.get(group);
    if (!g || g.window !== window) {
      groups.delete(group);
      if (groups.size >= maxGroups) groups.delete(groups.keys().next().value as string);
      g = { window, count: 0 };
      groups.set(group, g);
    }
    if (g.count >= config.limit) return false;
    g.count++;
    return true;
  };
  return {
    changes: false,
    apply(event, counts) {
      if (admit(event.tag, event.time, (p) => getPath(event.record, p))) return event.record;
      counts.dropped++;
      return null;
    },
    applyRaw(record, event, counts) {
      if (admit(event.tag, event.time, (p) => getRawPath(record, p))) return true;
      counts.dropped++;
      return false;
    },
  };
}
