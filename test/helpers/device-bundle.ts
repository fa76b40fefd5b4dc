// A board's device bundle as `npm run build -- --board` makes it (not written to disk), for the tests
// that run it: built cleanly (no problem, within the budget) or the test fails here.
import { expect } from 'vitest';
import { boardBundle, buildBundles } from '../../build.mjs';

export async function deviceBundle(boardFile: string, secretsFile?: string): Promise<string> {
  const spec = await boardBundle(boardFile, { secretsFile });
  const out = await buildBundles({ bundles: [spec], write: false });
  expect(out.problems).toEqual([]);
  expect(out.ok).toBe(true);
  return out.results[0].text;
}
