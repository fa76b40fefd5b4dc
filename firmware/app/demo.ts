// The demo application: a sensor that reports in bursts and obeys a command topic. Portable: it uses
// only the client, the device and the scheduler, so it runs on the desktop and on a board alike.
//
//   wren/<device>/reading  {"t": <s since boot>, "v": <value>}   QoS 1
//   wren/<device>/cmd      "ping" -> "pong"; "burst" -> a new burst of readings; "period <s>";
//                          "sleep" -> sleep now; anything else -> "unknown command"
//   wren/<device>/reply    the answers
//
// Awake, it publishes `burst` readings `periodMs` apart (application traffic: the device is active),
// then stays quiet so the device goes idle and then to sleep. On a sleep check-in it takes one reading
// and publishes it quietly (the device stays asleep).
import type { Client } from '../client/index';
import type { Device } from '../device/index';
import type { Scheduler, TaskId } from '../scheduler/index';

export interface DemoOptions {
  deviceId: string;
  periodMs: number;
  /** Readings per burst. */
  burst: number;
}

export interface Demo {
  /** Stops the burst under way (a command can start another). */
  stop(): void;
}

export function startDemo(client: Client, device: Device, sched: Scheduler, options: DemoOptions): Demo {
  const base = 'wren/' + options.deviceId + '/';
  const bootAt = sched.now();
  let period = options.periodMs;
  let left = 0;
  let task: TaskId | undefined;
  /** One reading; while `left` > 0 (a burst, not a quiet check-in), the next one `period` later. */
  function step(quiet?: boolean): void {
    const now = sched.now();
    // t: whole seconds since boot; v: 21 +- 3 over a day, two decimals
    client.publish(base + 'reading', '{"t":' + (((now - bootAt) / 1000) | 0) + ',"v":' + (21 + 3 * Math.sin(now / 3600000)).toFixed(2) + '}', { qos: 1, quiet: quiet });
    if (!quiet && --left > 0) task = sched.after(period, step);
  }
  /** Cancels the burst under way, then starts one of `n` readings. Without n it only stops: stop(). */
  function burst(n?: number): void {
    sched.cancel(task);
    left = n || 0;
    if (left > 0) step();
  }
  client.subscribe(base + 'cmd', 1, function (topic, payload) {
    // (the first 64 bytes are enough to know a command; apply() takes no Uint8Array on Espruino)
    let text = '';
    for (let i = 0; i < payload.length && i < 64; i++) text += String.fromCharCode(payload[i]);
    let r: string | undefined;
    if (text === 'ping') r = 'pong';
    else if (text === 'burst') burst(options.burst);
    else if (text === 'sleep') device.sleep();
    else if (text.indexOf('period ') === 0) {
      const sec = parseInt(text.substring(7), 10);
      r = 'bad period';
      if (sec >= 1 && sec <= 86400) {
        period = sec * 1000;
        r = 'period ' + sec;
      }
    } else r = 'unknown command';
    if (r) client.publish(base + 'reply', r, { qos: 1 });
  });
  if (device.checkingIn) step(true);
  else burst(options.burst);
  return { stop: burst };
}
