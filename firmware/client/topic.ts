// Topic filter matching (MQTT section 4.7).

/**
 * Does `topic` (a topic name) match `filter` (a topic filter)? '+' matches exactly one level, '#' any
 * number of levels including the parent ("a/#" matches "a") [MQTT-4.7.1-2]. Topics starting with '$'
 * are not matched by a filter starting with a wildcard [MQTT-4.7.2-1]. "$share/group/f" matches as f.
 */
export function topicMatches(filter: string, topic: string): boolean {
  if (filter.indexOf('$share/') === 0) {
    const slash = filter.indexOf('/', 7);
    if (slash < 0) return false;
    filter = filter.substring(slash + 1);
  }
  const c0 = filter.charAt(0);
  if (topic.charAt(0) === '$' && (c0 === '+' || c0 === '#')) return false;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}
