// The simulated day: wren (the real Client + Device on the mock HAL, board.json settings) and the
// fixed 60 s keep-alive baseline (the same Client, one connection held all day, pinging every 60 s)
// side by side on one virtual clock, each on its own mock network and broker, driven by the same
// profile and charged with the same power model (power.ts).
//
// The wren device, as on the hardware:
// - Deep sleep: the Device stops its loop (Scheduler.halt) and calls Power.sleep('deep', ms). The
//   simulator then does what the chip does: nothing runs for ms, then it REBOOTS: a new Scheduler,
//   Client and Device on the same flash (MemoryStorage), wake cause 'timer' (as in
//   test/device.test.ts). The Device restores its mode from flash and checks in.
// - The application runs only while the device does. A reading (profile "wake": false) due while it
//   deep-sleeps is taken at the next wake and published then; in sleep mode it is published with
//   {quiet: true}, so the check-in syncs it and the device sleeps again. An event ("wake": true: a
//   button, a sensor interrupt) wakes the device at once (a reboot with wake cause 'external') and is
//   application traffic: the device goes active. So is anything published while active or idle.
// - Commands from the broker side for a sleeping device are held by the broker (persistent session)
//   and delivered at its next connection.
// The baseline never sleeps: the application publishes at the profile times, commands arrive at once.
//
// Delivery check (counted at each side's broker): every application message in the window reached the
// broker, every command was acknowledged by the client and handed to the application, and every wren
// check-in connected (and published its status). Messages still held at the end of the window get a
// drain of one check-in period (+2 min) to arrive; charge and counts cover the window only.
import { Client } from '../../firmware/client/index';
import type { Device } from '../../firmware/device/index';
import { bootFirmware } from '../../firmware/boot';
import type { ModeChange } from '../../firmware/liveness/modes';
import { clientOptionsFor, deviceOptionsFor } from '../../firmware/config/index';
import type { Board } from '../../firmware/config/index';
import { Scheduler } from '../../firmware/scheduler/index';
import { utf8Read } from '../../firmware/mqtt/index';
import { MemoryStorage, MockNetwork, MockPower, SeededRandom, VirtualClock } from '../../hal/mock/index';
import type { LogLevel, TimerHandle, WakeCause } from '../../hal/types';
import { SimBroker } from './broker';
import { SimLog } from './log';
import { account, connectionAirBytes, cumulativeCharge } from './power';
import type { Account, Awake } from './power';
import { expand, payloadFor } from './profile';
import type { Profile, Scheduled } from './profile';
import { MeteredTransport, Radio } from './radio';
import { renderSvg } from './svg';

export const TARGET_RATIO = 10;

export interface SimOptions {
  hours: number;
  board: Board;
  /** For the report: where the board came from. */
  boardName: string;
  profile: Profile;
  profileName: string;
  seed?: number;
  /** Build the SVG (result.svg). */
  svg?: boolean;
  /** Firmware log lines (virtual time, side, level, tag). */
  log?: (line: string) => void;
  logLevel?: LogLevel;
}

export type ModeState = 'active' | 'idle' | 'checkin' | 'deep';

export interface Delivery {
  sent: number;
  delivered: number;
  /** Seqs not delivered. */
  missing: number[];
  /** Longest time from the profile time to the arrival (ms), over delivered messages. */
  maxDelayMs: number;
}

export interface SideResult {
  name: string;
  account: Account;
  awake: Awake;
  radio: Radio;
  app: Delivery;
  commands: Delivery;
  /** wren only. */
  checkIns: { count: number; delivered: number };
  wakes: { timer: number; external: number };
  /** Mode bands (wren) or the one connected band (baseline), within the window. */
  modes: Array<{ from: number; to: number; state: ModeState }>;
  /** Application messages as they reached the broker, and commands as the application got them. */
  appArrivals: number[];
  commandArrivals: number[];
  /** Connections opened: time and whether it was a check-in (wren). */
  connections: Array<{ at: number; checkIn: boolean }>;
  pingTimes: number[];
  /** Cumulative charge (mAh) at `seriesTimes`. */
  series: number[];
}

export interface SimResult {
  ok: boolean;
  /** One line per problem (what was not delivered). */
  problems: string[];
  ratio: number;
  windowMs: number;
  wren: SideResult;
  baseline: SideResult;
  seriesTimes: number[];
  /** The report, one entry per line; the last is "charge vs fixed-60s baseline: N.Nx less". */
  lines: string[];
  svg?: string;
  wallMs: number;
}

function fixed(n: number, d: number): string {
  return n.toFixed(d);
}

function kb(n: number): string {
  return n >= 10000 ? (n / 1000).toFixed(1) + ' kB' : n + ' B';
}

function dur(ms: number): string {
  if (ms < 60000) return (ms / 1000).toFixed(1) + ' s';
  if (ms < 3600000) return (ms / 60000).toFixed(1) + ' min';
  return (ms / 3600000).toFixed(2) + ' h';
}

function seqOf(payload: Uint8Array): number {
  const m = /^seq:(\d+);/.exec(utf8Read(payload, 0, Math.min(payload.length, 32)));
  return m ? Number(m[1]) : -1;
}

export function runSim(o: SimOptions): SimResult {
  const wall0 = Date.now();
  const board = o.board;
  const model = board.power;
  const windowMs = Math.round(o.hours * 3600000);
  const seed = o.seed ?? 1;
  const clock = new VirtualClock();
  const now = () => clock.time;
  const level = o.logLevel ?? 'info';
  const dopts = deviceOptionsFor(board);
  const statusTopic = dopts.statusTopic;
  const subs = board.subscriptions.map((s) => ({ topic: s.topic.split('{device}').join(board.device), qos: s.qos }));
  const b0 = board.brokers[0];
  const msgs: Scheduled[] = expand(o.profile, windowMs);
  const publishes = msgs.filter((m) => m.type === 'publish');
  const commands = msgs.filter((m) => m.type === 'command');

  // ------------------------------------------------------------------ wren
  const netW = new MockNetwork(clock);
  const brokerW = new SimBroker(netW, b0.host, b0.port, now, statusTopic);
  const radioW = new Radio();
  const flash = new MemoryStorage();
  const randomW = new SeededRandom(seed);
  const logW = new SimLog('wren', now, o.log, level);
  const awakeW: Awake = [];
  const modesW: Array<{ at: number; state: ModeState }> = [];
  const gotW: { [seq: string]: number } = {};
  const boots: Array<{ at: number; cause: WakeCause; conn: number; checkIn: boolean }> = [];
  const held: Scheduled[] = [];
  let device: Device | undefined;
  let client: Client | undefined;
  let asleep = false;
  let awakeSince = 0;
  let wakeTimer: TimerHandle | undefined;
  const wakes = { timer: 0, external: 0 };

  const modeAt = (at: number, state: ModeState) => {
    const last = modesW[modesW.length - 1];
    if (last && last.at === at) last.state = state;
    else if (!last || last.state !== state) modesW.push({ at, state });
  };

  // A reading (wake: false) published while the device is in sleep mode (a check-in, or a held
  // cellular sleep) is quiet: it does not wake the power modes, the device syncs it and sleeps again.
  // An event (wake: true), or anything published while active or idle, is application traffic.
  const publishW = (m: Scheduled) => {
    const quiet = !m.wake && (device as Device).mode === 'sleep';
    (client as Client).publish(m.topic, payloadFor(m.seq, m.bytes), { qos: m.qos, quiet });
  };

  const boot = (cause: WakeCause) => {
    asleep = false;
    awakeSince = clock.time;
    const sched = new Scheduler(clock, clock, logW);
    const power = new MockPower({ wakeCause: cause, clock });
    const transport = new MeteredTransport(netW.transport(), radioW, now);
    // Exactly what firmware/main.ts does at every boot (board options, subscriptions).
    const fw = bootFirmware(clientOptionsFor(board), deviceOptionsFor(board), subs, { scheduler: sched, transport, storage: flash, random: randomW, log: logW, power }, (_t, payload) => {
      const seq = seqOf(payload);
      if (seq > 0 && gotW[seq] === undefined) gotW[seq] = clock.time;
    });
    const c = fw.client;
    const d = fw.device;
    const b = { at: clock.time, cause, conn: brokerW.connections, checkIn: false };
    boots.push(b);
    d.on('mode', (ch: ModeChange) => modeAt(ch.atMs, ch.to === 'sleep' ? 'checkin' : ch.to));
    d.on('checkin', () => {
      b.checkIn = true;
    });
    power.onSleep = (mode, ms) => {
      if (mode !== 'deep') return;
      asleep = true;
      awakeW.push([awakeSince, clock.time]);
      modeAt(clock.time, 'deep');
      wakeTimer = clock.set(ms, () => {
        wakeTimer = undefined;
        wakes.timer++;
        boot('timer');
      });
    };
    device = d;
    client = c;
    modeAt(clock.time, d.mode === 'sleep' ? 'checkin' : d.mode);
    d.start();
    // The application runs again: readings held while asleep go out now.
    const h = held.splice(0, held.length);
    for (const m of h) publishW(m);
  };

  // ------------------------------------------------------------------ baseline
  const netB = new MockNetwork(clock);
  const brokerB = new SimBroker(netB, b0.host, b0.port, now, statusTopic);
  const radioB = new Radio();
  const logB = new SimLog('base', now, o.log, level);
  const schedB = new Scheduler(clock, clock, logB);
  const optsB = clientOptionsFor(board);
  optsB.keepAliveSec = 60;
  const gotB: { [seq: string]: number } = {};
  const clientB = new Client(optsB, {
    scheduler: schedB,
    transport: new MeteredTransport(netB.transport(), radioB, now),
    storage: new MemoryStorage(),
    random: new SeededRandom(seed + 1),
    log: logB,
  });
  for (const s of subs) {
    clientB.subscribe(s.topic, s.qos, (_t, payload) => {
      const seq = seqOf(payload);
      if (seq > 0 && gotB[seq] === undefined) gotB[seq] = clock.time;
    });
  }

  // ------------------------------------------------------------------ the profile
  for (const m of msgs) {
    clock.set(m.atMs, () => {
      if (m.type === 'command') {
        const p = new TextEncoder().encode(payloadFor(m.seq, m.bytes));
        brokerW.inject(m.seq, m.topic, p, m.qos);
        brokerB.inject(m.seq, m.topic, p, m.qos);
        return;
      }
      clientB.publish(m.topic, payloadFor(m.seq, m.bytes), { qos: m.qos });
      if (!asleep) publishW(m);
      else if (!m.wake) held.push(m);
      else {
        if (wakeTimer !== undefined) clock.clear(wakeTimer);
        wakeTimer = undefined;
        wakes.external++;
        held.push(m);
        boot('external');
      }
    });
  }

  boot('power-on');
  clientB.start();
  clock.advance(windowMs);
  // Drain: what is still held (a reading for the next check-in, a command for a sleeping device).
  const allIn = () =>
    publishes.every((m) => brokerW.appSeen[m.seq] && brokerB.appSeen[m.seq]) &&
    commands.every((m) => gotW[m.seq] !== undefined && gotB[m.seq] !== undefined && brokerW.commandsAcked[m.seq] !== undefined && brokerB.commandsAcked[m.seq] !== undefined);
  clock.runUntil(allIn, dopts.modes.sleepCheckInSec * 1000 + 120000);
  if (!asleep) awakeW.push([awakeSince, clock.time]);
  void device;

  // ------------------------------------------------------------------ results
  const problems: string[] = [];
  const delivery = (name: string, list: Scheduled[], arrived: (seq: number) => number | undefined): Delivery => {
    const missing: number[] = [];
    let maxDelayMs = 0;
    for (const m of list) {
      const at = arrived(m.seq);
      if (at === undefined) missing.push(m.seq);
      else maxDelayMs = Math.max(maxDelayMs, at - m.atMs);
    }
    if (missing.length) problems.push(name + ': ' + missing.length + ' of ' + list.length + ' not delivered (seq ' + missing.slice(0, 10).join(', ') + (missing.length > 10 ? ', ...' : '') + ')');
    return { sent: list.length, delivered: list.length - missing.length, missing, maxDelayMs };
  };
  const appW = delivery('wren application messages', publishes, (s) => brokerW.appSeen[s]?.at);
  const appB = delivery('baseline application messages', publishes, (s) => brokerB.appSeen[s]?.at);
  const cmdW = delivery('wren commands', commands, (s) => (brokerW.commandsAcked[s] !== undefined ? gotW[s] : undefined));
  const cmdB = delivery('baseline commands', commands, (s) => (brokerB.commandsAcked[s] !== undefined ? gotB[s] : undefined));

  // A check-in is delivered when one of the connections its boot opened was accepted and carried the
  // device's status (when the board has a status topic).
  let checkIns = 0;
  let checkInsOk = 0;
  const connKinds: boolean[] = [];
  for (let i = 0; i < boots.length; i++) {
    const b = boots[i];
    const hi = i + 1 < boots.length ? boots[i + 1].conn : brokerW.connections;
    for (let c = b.conn; c < hi; c++) connKinds[c] = b.checkIn && c === b.conn;
    if (!b.checkIn || b.at >= windowMs) continue;
    checkIns++;
    let ok = false;
    for (let c = b.conn; c < hi; c++) {
      const st = brokerW.statusByConn[c];
      if (brokerW.connectedConns[c] && (!statusTopic || (st && st.some((x) => x.indexOf('"checkin"') >= 0 || x.indexOf('"online"') >= 0)))) ok = true;
    }
    if (ok) checkInsOk++;
    else problems.push('wren check-in at ' + dur(b.at) + ' did not reach the broker');
  }

  const accW = account(awakeW, radioW, model, windowMs);
  const accB = account([[0, windowMs]], radioB, model, windowMs);
  const ratio = accB.chargeMah / accW.chargeMah;

  const step = Math.max(60000, Math.round(windowMs / 1440));
  const seriesTimes: number[] = [];
  for (let t = 0; t < windowMs; t += step) seriesTimes.push(t);
  seriesTimes.push(windowMs);

  const bands: Array<{ from: number; to: number; state: ModeState }> = [];
  for (let i = 0; i < modesW.length; i++) {
    const from = modesW[i].at;
    const to = i + 1 < modesW.length ? modesW[i + 1].at : windowMs;
    if (from >= windowMs) break;
    if (to > from) bands.push({ from, to: Math.min(to, windowMs), state: modesW[i].state });
  }
  const inWindow = (t: number) => t < windowMs;
  const pingsOf = (r: Radio) => r.packets.filter((p) => p.dir === 'tx' && p.type === 12 && inWindow(p.at)).map((p) => p.at);
  const wren: SideResult = {
    name: 'wren',
    account: accW,
    awake: awakeW,
    radio: radioW,
    app: appW,
    commands: cmdW,
    checkIns: { count: checkIns, delivered: checkInsOk },
    wakes,
    modes: bands,
    appArrivals: publishes.map((m) => brokerW.appSeen[m.seq]?.at).filter((t): t is number => t !== undefined && inWindow(t)),
    commandArrivals: commands.map((m) => gotW[m.seq]).filter((t): t is number => t !== undefined && inWindow(t)),
    connections: radioW.connects.map((at, i) => ({ at, checkIn: connKinds[i] === true })).filter((c) => inWindow(c.at)),
    pingTimes: pingsOf(radioW),
    series: cumulativeCharge(awakeW, radioW, model, seriesTimes),
  };
  const baseline: SideResult = {
    name: 'fixed-60s',
    account: accB,
    awake: [[0, windowMs]],
    radio: radioB,
    app: appB,
    commands: cmdB,
    checkIns: { count: 0, delivered: 0 },
    wakes: { timer: 0, external: 0 },
    modes: [{ from: 0, to: windowMs, state: 'idle' }],
    appArrivals: publishes.map((m) => brokerB.appSeen[m.seq]?.at).filter((t): t is number => t !== undefined && inWindow(t)),
    commandArrivals: commands.map((m) => gotB[m.seq]).filter((t): t is number => t !== undefined && inWindow(t)),
    connections: radioB.connects.map((at) => ({ at, checkIn: false })).filter((c) => inWindow(c.at)),
    pingTimes: pingsOf(radioB),
    series: cumulativeCharge([[0, windowMs]], radioB, model, seriesTimes),
  };

  const lines = report(o, wren, baseline, ratio, clientVersionText(brokerW));
  const res: SimResult = { ok: problems.length === 0, problems, ratio, windowMs, wren, baseline, seriesTimes, lines, wallMs: 0 };
  if (o.svg) res.svg = renderSvg(res, o);
  res.wallMs = Date.now() - wall0;
  return res;
}

function clientVersionText(b: SimBroker): string {
  const v = b.versions;
  const has4 = v.indexOf(4) >= 0;
  const has5 = v.indexOf(5) >= 0;
  return has4 && has5 ? 'MQTT 5.0 and 3.1.1' : has5 ? 'MQTT 5.0' : 'MQTT 3.1.1';
}

function report(o: SimOptions, w: SideResult, b: SideResult, ratio: number, version: string): string[] {
  const m = o.board.power;
  const t = o.board.transport.type;
  const k = o.board.keepAlive;
  const L: string[] = [];
  const how =
    t === 'cellular'
      ? 'cellular: the connection is held while asleep, pinging at the check-in interval'
      : t === 'wifi'
        ? 'Wi-Fi: deep sleep between check-ins, a full reconnect at each'
        : 'host, modelled like Wi-Fi: deep sleep between check-ins, a full reconnect at each';
  L.push('wren sim: ' + o.hours + ' h of ' + o.profileName + ' on ' + o.boardName + ' (' + o.board.device + ', ' + how + '), ' + version + ', seed ' + (o.seed ?? 1));
  if (o.profile.description) L.push('profile: ' + o.profile.description);
  L.push(
    'wren: ping ' + k.activeSec + ' s active / ' + k.idleSec + ' s idle, idle after ' + k.idleAfterSec + ' s, sleep after ' + k.sleepAfterSec + ' s more, check-in every ' + k.sleepCheckInSec +
      ' s; baseline: the same client on one connection held all day, PINGREQ every 60 s, never sleeping',
  );
  L.push('power model (board "power"): deep sleep ' + m.deepSleepUa + ' uA, awake ' + m.idleConnectedMa + ' mA, radio on ' + m.radioActiveMa + ' mA');
  L.push('  charge = deep-sleep h x ' + m.deepSleepUa / 1000 + ' mA + awake h x ' + m.idleConnectedMa + ' mA + radio-on h x ' + m.radioActiveMa + ' mA');
  L.push('  radio-on = connections x ' + m.reconnectMs + ' ms + exchanges x ' + m.exchangeMs + ' ms (added to the awake time: mock links have no latency)');
  L.push(
    '  bytes on the air = MQTT bytes + per packet 40 B TCP/IP + ' + m.tlsOverheadBytes + ' B TLS + a 40 B ACK; per connection ' + connectionAirBytes(m) + ' B (TCP setup/teardown' +
      (m.tlsOverheadBytes > 0 ? ' + TLS handshake' : '') + ')',
  );
  L.push('');
  const rows: Array<[string, string, string]> = [];
  const r = (label: string, a: string, c: string) => rows.push([label, a, c]);
  const aw = w.account;
  const ab = b.account;
  r('', 'wren', 'fixed-60s');
  r('PINGREQs sent', String(aw.pingreqs), String(ab.pingreqs));
  r('connections opened', String(aw.connects), String(ab.connects));
  r('  reconnects (after the first)', String(Math.max(0, aw.connects - 1)), String(Math.max(0, ab.connects - 1)));
  r('  check-ins (timer wakes)', String(w.wakes.timer), '-');
  r('  event wakes (profile "wake")', String(w.wakes.external), '-');
  r('MQTT packets (both ways)', String(aw.packets), String(ab.packets));
  r('exchanges', String(aw.exchanges), String(ab.exchanges));
  r('MQTT bytes', kb(aw.mqttBytes), kb(ab.mqttBytes));
  r('bytes on the air (TCP/IP, TLS)', kb(aw.airBytes), kb(ab.airBytes));
  r('radio-on seconds', fixed(aw.radioOnMs / 1000, 1), fixed(ab.radioOnMs / 1000, 1));
  r('awake hours', fixed(aw.awakeMs / 3600000, 2), fixed(ab.awakeMs / 3600000, 2));
  r('deep sleep hours', fixed(aw.deepSleepMs / 3600000, 2), fixed(ab.deepSleepMs / 3600000, 2));
  r('charge (mAh)', fixed(aw.chargeMah, 2), fixed(ab.chargeMah, 2));
  const parts = (a: Account) => [(a.deepSleepMs * m.deepSleepUa) / 1000 / 3600000, (a.awakeMs * m.idleConnectedMa) / 3600000, (a.radioOnMs * m.radioActiveMa) / 3600000];
  const pw = parts(aw);
  const pb = parts(ab);
  r('  in deep sleep', fixed(pw[0], 2), fixed(pb[0], 2));
  r('  awake, radio idle', fixed(pw[1], 2), fixed(pb[1], 2));
  r('  radio on', fixed(pw[2], 2), fixed(pb[2], 2));
  const life = (a: Account) => fixed(m.batteryMah / ((a.chargeMah / a.windowMs) * 86400000), 0) + ' d';
  r('battery life (' + m.batteryMah + ' mAh)', life(aw), life(ab));
  r('app messages delivered', w.app.delivered + '/' + w.app.sent, b.app.delivered + '/' + b.app.sent);
  r('  longest delay to the broker', dur(w.app.maxDelayMs), dur(b.app.maxDelayMs));
  r('commands delivered', w.commands.delivered + '/' + w.commands.sent, b.commands.delivered + '/' + b.commands.sent);
  r('  longest delay to the device', dur(w.commands.maxDelayMs), dur(b.commands.maxDelayMs));
  r('check-ins delivered (all wakes)', w.checkIns.delivered + '/' + w.checkIns.count, '-');
  const w0 = Math.max(...rows.map((x) => x[0].length));
  const w1 = Math.max(...rows.map((x) => x[1].length));
  const w2 = Math.max(...rows.map((x) => x[2].length));
  for (const [a, c, d] of rows) L.push(a.padEnd(w0) + '  ' + c.padStart(w1) + '  ' + d.padStart(w2));
  L.push('');
  if (t === 'cellular') L.push('target: the ' + TARGET_RATIO + 'x target is for Wi-Fi; this board is cellular (check its "power" figures are the modem\'s)');
  else L.push('target: at least ' + TARGET_RATIO + 'x less charge than the baseline on Wi-Fi: ' + (ratio >= TARGET_RATIO ? 'met' : 'MISSED'));
  L.push('charge vs fixed-60s baseline: ' + ratio.toFixed(1) + 'x less');
  return L;
}
