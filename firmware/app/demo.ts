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
  let task: TaskId | undefined;
  /**
   * Cancels the burst under way, then takes `n` readings `period` apart (without n it only stops:
   * stop()). A quiet one is the sleep check-in's single reading.
   */
  function burst(n?: number, quiet?: boolean): void {
    sched.cancel(task);
    if (n! > 0) {
      const now = sched.now();
      // t: whole seconds since boot; v: 21 +- 3 over a day, two decimals
      client.publish(base + 'reading', '{"t":' + (((now - bootAt) / 1000) | 0) + ',"v":' + (21 + 3 * Math.sin(now / 3600000)).toFixed(2) + '}', { qos: 1, quiet: quiet });
      if (n! > 1) task = sched.after(period, burst.bind(null, n! - 1));
    }
  }
  client.subscribe(base + 'cmd', 1, function (topic, payload) {
    // The first 64 bytes are enough to know a command. (Not subarray(0, 64): Espruino 2v29 does not
    // clamp its end to a view's length, and the payload is a view into the packet.)
    const text: string = String.fromCharCode.apply(null, [].slice.call(payload, 0, 64));
    const sec = (text.substring(7) as any) | 0; // "period <s>": whole seconds (anything else is 0)
    const r =
      text === 'ping' ? 'pong'
      : text === 'burst' ? burst(options.burst)
      : text === 'sleep' ? device.sleep()
      : text.indexOf('period ') ? 'unknown command'
      : sec >= 1 && sec <= 86400 ? ((period = sec * 1000), 'period ' + sec)
      : 'bad period';
    if (r) client.publish(base + 'reply', r, { qos: 1 });
  });
  burst(device.checkingIn ? 1 : options.burst, device.checkingIn);
  return { stop: burst };
}
