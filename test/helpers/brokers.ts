// The brokers of tools/brokers.ts for vitest: everything from there, plus describeMosquitto().
import { describe } from 'vitest';
import { hasMosquitto } from '../../tools/brokers';

export * from '../../tools/brokers';

let skipNoted = false;

/** describe() that is skipped (with one printed note) when mosquitto is not installed. */
export function describeMosquitto(name: string, fn: () => void): void {
  if (!hasMosquitto && !skipNoted) {
    skipNoted = true;
    console.warn('skipped: mosquitto not installed (apt-get install mosquitto)');
  }
  describe.skipIf(!hasMosquitto)(name, fn);
}
