// Entry point bundled for the Espruino Linux interpreter by test/espruino-codec.test.ts: runs the
// codec checks (codec-check.ts), prints one line per case and a final
// "DONE <passed> passed, <failed> failed", then quits. quit() is ignored at top level on Espruino,
// so it is called from a timer.

import { runCodecChecks } from './codec-check';

declare function quit(): void;

let totals = { passed: 0, failed: 0 };
try {
  totals = runCodecChecks(function (line: string) {
    console.log(line);
  });
} catch (e) {
  console.log('FAIL driver: threw ' + String(e && (e as { message?: string }).message ? (e as { message: string }).message : e));
  totals.failed++;
}
console.log('DONE ' + totals.passed + ' passed, ' + totals.failed + ' failed');
setTimeout(function () {
  quit();
}, 1);
