// The demo application: a sensor that publishes a reading every period (QoS 1, retained) and obeys a
// command topic. Portable: it uses only the client and the scheduler, so it runs on the desktop and
// on a board alike.
//
//   wren/<id>/reading   {"t": <seconds since start>, "v": <value>}     (QoS 1)
//   wren/<id>/cmd       "ping" -> "pong" on wren/<id>/status; "period <sec>" -> new period
//   wren/<id>/status    "online" at connect, replies to commands
import type { Client } from '../client/index';
import type { Scheduler, TaskId } from '../scheduler/index';

export interface DemoOptions {
  deviceId: string;
  periodMs: number;
}

export interface Demo {
  readings: number;
  commands: number;
  stop(): void;
}

export function startDemo(client: Client, sched: Scheduler, options: DemoOptions): Demo {
  const base = 'wren/' + options.deviceId + '/';
  const startedAt = sched.now();
  let period = options.periodMs;
  let task: TaskId | undefined;
  const demo: Demo = {
    readings: 0,
    commands: 0,
    stop: function () {
      if (task !== undefined) sched.cancel(task);
      task = undefined;
    },
  };
  function reading(): void {
    const t = Math.round((sched.now() - startedAt) / 1000);
    // A plausible temperature: a slow daily-ish wave.
    const v = Math.round((21 + 3 * Math.sin(t / 600)) * 100) / 100;
    client.publish(base + 'reading', JSON.stringify({ t: t, v: v }), { qos: 1 });
    demo.readings++;
  }
  function schedule(): void {
    demo.stop();
    task = sched.every(period, reading, 'demo.reading');
  }
  client.subscribe(base + 'cmd', 1, function (topic, payload) {
    demo.commands++;
    let text = '';
    for (let i = 0; i < payload.length && i < 64; i++) text += String.fromCharCode(payload[i]);
    if (text === 'ping') {
      client.publish(base + 'status', 'pong', { qos: 1 });
    } else if (text.indexOf('period ') === 0) {
      const sec = parseInt(text.substring(7), 10);
      if (sec >= 1 && sec <= 86400) {
        period = sec * 1000;
        schedule();
        client.publish(base + 'status', 'period ' + sec, { qos: 1 });
      } else {
        client.publish(base + 'status', 'bad period', { qos: 1 });
      }
    } else {
      client.publish(base + 'status', 'unknown command', { qos: 1 });
    }
  });
  client.on('state', function (s) {
    if (s === 'connected') client.publish(base + 'status', 'online', { qos: 1, retain: true });
  });
  reading();
  schedule();
  return demo;
}
