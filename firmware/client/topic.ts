// Topic filter matching (MQTT section 4.7).

/**
 * Does `topic` (a topic name) match `filter` (a topic filter)? '+' matches exactly one level, '#' any
 * number of levels including the parent ("a/#" matches "a") [MQTT-4.7.1-2]. Topics starting with '$'
 * are not matched by a filter starting with a wildcard [MQTT-4.7.2-1]. "$share/group/f" matches as f.
 */
export function topicMatches(filter: string, topic: string): boolean {
  let f = filter.split('/');
  const t = topic.split('/');
  if (f[0] === '$share' && f.length > 1) f = f.slice(2);
  if (topic.charAt(0) === '$' && (f[0] === '+' || f[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    // '+' needs a level to match, any other level the same level
    if (f[i] === '+' ? i >= t.length : f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}
