// Build-time feature switches of a device build. build.mjs defines each one from the board.json
// (esbuild `define`), and esbuild then drops the code behind a false one: a board that speaks only
// MQTT 3.1.1 carries no MQTT 5 code, a board without TLS no TLS code. Everywhere else (Node: the
// tests, npm start, the simulator, and bundles built without a board) they are not defined and every
// feature is on.
//
// Test one INLINE, with exactly this idiom (through an imported constant or a helper function,
// esbuild would keep the dead code, measured with esbuild 0.28):
//
//   if (typeof WREN_V5 === 'undefined' || WREN_V5) { ... MQTT 5 only ... }
//
// WREN_V5: false when board.mqtt.version is "4" (no MQTT 5: properties, reason strings, AUTH, ...).
// WREN_AUTO: false when board.mqtt.version is "4" or "5" (a fixed version: no 5.0 -> 3.1.1 fallback).
// WREN_TLS: false when no broker of the board has "tls".
// WREN_TRANSPORT: the board's transport.type ("wifi", "cellular", "host"): the unused network driver
//   and the other transport's sleep code are dropped.
// WREN_DEVICE: true in every device build: what only tests and tools use (inspection methods, the
//   JavaScript CRC fallback, checks of the firmware's own calls) is left out with
//   `if (typeof WREN_DEVICE === 'undefined') { ... }`.

declare const WREN_V5: boolean | undefined;
declare const WREN_AUTO: boolean | undefined;
declare const WREN_TLS: boolean | undefined;
declare const WREN_DEVICE: boolean | undefined;
declare const WREN_TRANSPORT: 'wifi' | 'cellular' | 'host' | undefined;
