// Reading board.json and a profile for the simulator: a value, or one line that says what is wrong
// and what to do.
import fs from 'node:fs';
import { validateBoard } from '../../firmware/config/index';
import type { Board } from '../../firmware/config/index';
import { topicMatches } from '../../firmware/client/topic';
import { parseProfile } from './profile';
import type { Profile } from './profile';

/** At most five problems in the one line; the count of the rest. */
function some(errors: string[]): string {
  return errors.length <= 5 ? errors.join('; ') : errors.slice(0, 5).join('; ') + '; and ' + (errors.length - 5) + ' more';
}

export type Loaded<T> = { value: T; error?: undefined } | { value?: undefined; error: string };

function readJson(file: string, name: string, what: string, option: string): Loaded<unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    return { error: 'cannot read the ' + what + ' ' + name + ' (' + ((e as NodeJS.ErrnoException).code || String(e)) + '): pass an existing file with ' + option };
  }
  try {
    return { value: JSON.parse(text) };
  } catch (e) {
    return { error: name + ' is not valid JSON (' + (e as Error).message + '): fix the file or pass another with ' + option };
  }
}

/** `name` is how the file is shown in messages and in the report. */
export function loadBoard(file: string, name: string): Loaded<Board> {
  const j = readJson(file, name, 'board file', '--board');
  if (j.error !== undefined) return { error: j.error };
  const r = validateBoard(j.value);
  if (!r.board) return { error: name + ': ' + some(r.errors) + ' (fix the board file or pass another with --board)' };
  return { value: r.board };
}

export function loadProfile(file: string, name: string, board: Board): Loaded<Profile> {
  const j = readJson(file, name, 'profile', '--profile');
  if (j.error !== undefined) return { error: j.error };
  const subs = board.subscriptions.map((s) => s.topic.split('{device}').join(board.device));
  const r = parseProfile(j.value, board.device, subs, topicMatches);
  if (!r.profile) return { error: name + ': ' + some(r.errors) + ' (fix the profile; the format is in tools/sim/README.md)' };
  return { value: r.profile };
}
