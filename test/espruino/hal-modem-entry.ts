// Runs ON the Espruino Linux interpreter (bundled by test/hal-espruino-real.test.ts): the cellular
// driver (hal/espruino/modem.ts + at.ts) against the simulated SIM7000 of test/helpers/fake-modem.ts,
// in real time on Espruino's own timers, with the modem's output cut into single bytes and mixed with
// garbage: attach, TCP open, every byte value both ways, remote close, then a stuck modem recovered by
// RESET. Prints one line per check.

import { createEspruinoHal, CellularModem } from '../../hal/espruino/index';
import type { TransportError } from '../../hal/types';
import { FakeModem } from '../helpers/fake-modem';

declare function quit(): void;

const hal = createEspruinoHal({ logLevel: 'warn' });
const out = function (s: string) {
  console.log(s);
};

// the fake modem's clock: Espruino's real timers
const clock: any = {
  now: function () {
    return hal.clock.now();
  },
  set: function (ms: number, cb: () => void) {
    return hal.timers.set(ms, cb);
  },
};

const fm = new FakeModem(clock, { powered: true, bootMs: 300, registerAfterMs: 0, latencyMs: 2 });
fm.split = 'bytes';
fm.garbage = true;
const m = new CellularModem({
  uart: fm.uart,
  timers: hal.timers,
  E: hal.env.E,
  apn: 'iot.example',
  setPin: function (pin: any, v: number) {
    fm.setPin(pin, v);
  },
  pwrkeyPin: 'PWR',
  resetPin: 'RST',
  bootMs: 400,
  cmdTimeoutMs: 500,
});

const events: string[] = [];
let got = '';
m.setHandler({
  onUp: function () {
    events.push('up');
  },
  onDown: function (r: string) {
    events.push('down:' + r);
  },
});
m.transport.setHandler({
  onOpen: function () {
    events.push('open');
  },
  onData: function (b: Uint8Array) {
    got += E_toString(b);
  },
  onDrain: function () {},
  onError: function (e: TransportError) {
    events.push('error:' + e.code);
  },
  onClose: function () {
    events.push('close');
  },
});

function E_toString(b: Uint8Array): string {
  return hal.env.E.toString(b);
}

let all = '';
for (let i = 0; i < 256; i++) all += String.fromCharCode(i);
const tricky = all + '\r\nOK\r\n> CLOSED\r\n';

function waitFor(e: string, ms: number, next: () => void): void {
  const t0 = hal.clock.now();
  const check = function () {
    if (events.indexOf(e) >= 0) next();
    else if (hal.clock.elapsed(t0) > ms) {
      out('TIMEOUT waiting for ' + e + ': ' + events.join(','));
      quit();
    } else hal.timers.set(20, check);
  };
  check();
}

hal.timers.set(10, function () {
  m.up();
  waitFor('up', 20000, function () {
    out('UP ' + m.isUp() + ' ' + m.signal());
    m.transport.open({ host: 'broker.example', port: 1883 });
    waitFor('open', 10000, function () {
      m.transport.write(hal.env.E.toUint8Array(tricky));
      fm.remoteSend(tricky);
      hal.timers.set(3000, function () {
        out('TX ' + (fm.received === tricky) + ' ' + fm.received.length);
        out('RX ' + (got === tricky) + ' ' + got.length);
        fm.remoteClose();
        waitFor('close', 5000, function () {
          fm.stick();
          m.at('AT+CSQ');
          waitFor('down:error: modem not responding', 20000, function () {
            hal.timers.set(1500, function () {
              out('RESET ' + fm.resetPresses + ' ' + fm.stuck);
              events.splice(0, events.length);
              m.up();
              waitFor('up', 20000, function () {
                out('EVENTS ' + events.join(','));
                out('DONE');
                quit();
              });
            });
          });
        });
      });
    });
  });
});
