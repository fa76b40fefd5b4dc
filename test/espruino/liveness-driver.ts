// Entry point bundled for the Espruino Linux interpreter by test/liveness-espruino.test.ts: prints the
// lines of runLivenessCases() and a final "DONE", then quits (quit() only works from a callback).

import { runLivenessCases } from './liveness-cases';

declare function quit(): void;

try {
  runLivenessCases(function (line: string) {
    console.log(line);
  });
  console.log('DONE');
} catch (e) {
  console.log('FAIL driver: threw ' + String(e && (e as { message?: string }).message ? (e as { message: string }).message : e));
}
setTimeout(function () {
  quit();
}, 1);
