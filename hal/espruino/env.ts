// The Espruino globals the HAL uses, gathered in one injectable object so tests can hand in fakes
// (test/helpers/fake-espruino.ts) and the device uses the real ones (createEspruinoHal() takes
// Espruino's root scope, `global`, which already has every member: a copy would cost JsVars).
//
// Everything under hal/espruino runs ON Espruino: the subset in ../../../shared/DESIGN.md section 2
// (no Map/Set, destructuring, default parameters, spread, async, class fields; functions defined before
// they are used at top level; never clearTimeout(undefined)).

/** A socket as `require("net").connect()` / `require("tls").connect()` return it. */
export interface EspSocket {
  on(event: string, cb: (arg?: any) => void): void;
  /** Takes a STRING (binary): a Uint8Array would be sent as its decimal text "48,128". */
  write(data: string): boolean;
  end(): void;
}

/** The Espruino globals (and built-in modules, through require) the HAL touches. */
export interface EspruinoEnv {
  /** `require`: 'net', 'tls', 'Wifi', 'Storage'. */
  require(name: string): any;
  /** The E object: toString, toUint8Array, CRC32, hwRand. */
  E: any;
  /** The ESP32 object (deepSleep, getWakeupCause), undefined on other builds. */
  ESP32: any;
  /** Seconds (float) of the system clock. */
  getTime(): number;
  setTimeout(cb: () => void, ms: number): any;
  /** Never call it with undefined: Espruino's clearTimeout(undefined) clears every timer. */
  clearTimeout(id: any): void;
  /** 0..1 of the ADC full scale. */
  analogRead?(pin: any): number;
  digitalWrite?(pin: any, value: number | boolean): void;
  pinMode?(pin: any, mode: string): void;
  /** base64 -> binary string (PEM -> DER for TLS). */
  atob?(s: string): string;
  /** Where log lines go (Espruino's print(), the same as console.log). */
  print(line: string): void;
  /** The UART a modem is wired to (Serial2 by default). */
  Serial2?: any;
}

/** A message from anything thrown (Espruino's errors have .message but no .name). */
export function errText(e: any): string {
  return e && typeof e.message === 'string' ? e.message : String(e);
}
