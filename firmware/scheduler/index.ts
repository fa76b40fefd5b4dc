// The single loop: the one owner of every timer in the firmware.
//
// Tasks run to completion, one after the other. The scheduler keeps its tasks in an array sorted by
// (deadline, insertion order), arms exactly ONE host timer for the earliest deadline, and when it fires
// runs everything that is due. Nothing else in firmware/ touches time: transports' events are post()ed
// so that they too run to completion inside the loop, never re-entrantly.
//
// Time: the scheduler keeps its own monotonic timeline (now()), unwrapped: it starts at the clock's
// value at construction and adds the clock's wrap-safe elapsed time at every read, so a device clock
// that wraps at 2^32 ms never reaches the task queue. at() uses that timeline. On the virtual clock
// (which starts at 0 and does not wrap) scheduler time equals clock time.
//
// A device build (WREN_DEVICE, see firmware/flags.d.ts) leaves out what its one caller already
// guarantees: there the clock, the timer host and the log are always hal/espruino's EspruinoCore
// (firmware/main.ts), whose clock is already monotonic and unwrapped, whose set() clamps the delay and
// whose clear() ignores an undefined handle; runDue() is only called by the host timer (never nested);
// maxPerTurn is the default; and the error count is for tests and tools.
//
// The class holds only what the firmware calls (now, at, after, post, cancel, halt, runDue). What only
// tests and tools use (every, pending) are plain functions below the class: the device bundle drops
// them, as it keeps every method of a class.
//
// Espruino-safe: no Map/Set, no default/rest params, no class fields, no self-reference in the body.

import type { Clock, Log, TimerHandle, TimerHost } from '../../hal/types';

/**
 * Identifies a task for cancel(): an opaque handle (the task itself), never undefined. A handle of a
 * task that has run or was cancelled stays harmless to cancel.
 */
export type TaskId = unknown;

/** Longest single host sleep (setTimeout's limit); longer waits re-arm when it fires. */
export const MAX_TIMER_MS = 2147483647;

/** Tasks per turn unless the constructor says otherwise. */
const MAX_PER_TURN = 64;

/** A scheduled task (internal; exported for the type of pending()). */
export interface Task {
  /** Deadline on the scheduler timeline. Ties run in insertion order (at() goes after equal deadlines). */
  due: number;
  fn: () => void;
  /** For the error log only. */
  name: string | undefined;
}

export class Scheduler {
  /** Tasks not yet run, sorted by (due, insertion order). Internal (read by pending() and every()). */
  q_: Task[];
  private clock_: Clock;
  private host_: TimerHost;
  private log_: Log | undefined;
  private maxPerTurn_!: number;
  /** Scheduler timeline (unwrapped ms) and the raw clock value it was last synced to. */
  private t_!: number;
  private lastRaw_!: number;
  /** The last host timer armed, undefined when none (it may have fired since: clearing it then does nothing). */
  private handle_: TimerHandle;
  /** True while runDue() runs tasks (unset: false). */
  private running_: boolean | undefined;
  /** Tasks that threw (caught and logged). Not counted in a device build. */
  errors!: number;
  /** Set by halt(): the loop is over (unset: false). */
  halted: boolean | undefined;

  /**
   * @param clock the time source
   * @param host the timer the loop sleeps on (one armed at a time)
   * @param log where exceptions thrown by tasks are reported (optional)
   * @param maxPerTurn at most this many tasks per turn (default 64); the rest run after yielding to the
   *   host event loop, so a task that keeps re-posting itself cannot starve I/O.
   */
  constructor(clock: Clock, host: TimerHost, log?: Log, maxPerTurn?: number) {
    this.q_ = [];
    this.clock_ = clock;
    this.host_ = host;
    this.log_ = log;
    if (typeof WREN_DEVICE === 'undefined') {
      this.maxPerTurn_ = maxPerTurn || MAX_PER_TURN;
      this.t_ = this.lastRaw_ = clock.now();
      this.errors = 0;
    }
  }

  /** Milliseconds on the scheduler timeline (monotonic, never wraps). */
  now(): number {
    if (typeof WREN_DEVICE !== 'undefined') return this.clock_.now();
    const raw = this.clock_.now();
    let d = raw - this.lastRaw_;
    this.lastRaw_ = raw;
    // A step back of more than half the 2^32 ms range is the clock wrapping; a smaller one (a
    // misbehaving clock) counts as 0.
    if (d < 0) d = d < -2147483648 ? d + 4294967296 : 0;
    return (this.t_ += d);
  }

  /**
   * Run `fn` at `timeMs` on the scheduler timeline. A time already past counts as now: the task runs
   * after the tasks already due (like post()), never ahead of them. After halt() nothing is queued.
   * `name` only names the task in the error log.
   */
  at(timeMs: number, fn: () => void, name?: string): TaskId {
    const now = this.now();
    const task: Task = { due: timeMs > now ? timeMs : now, fn: fn, name: name };
    if (!this.halted) {
      const q = this.q_;
      // after every task with a deadline <= due (searched from the end: most new tasks go last)
      let i = q.length;
      while (i && q[i - 1].due > task.due) i--;
      q.splice(i, 0, task);
      if (!i) this.arm_();
    }
    return task;
  }

  /** Run `fn` once, `delayMs` from now (negative counts as 0). */
  after(delayMs: number, fn: () => void, name?: string): TaskId {
    return this.at(this.now() + delayMs, fn, name);
  }

  /**
   * Run `fn` soon: in this turn if the loop is running, otherwise in the next one. Used to deliver
   * events (transport data, link changes) into the loop so they run to completion, never re-entrantly.
   * Posted work runs in post order, after tasks already due.
   */
  post(fn: () => void, name?: string): TaskId {
    return this.at(0, fn, name);
  }

  /**
   * Cancel a task (or the next run of a periodic one). Idempotent; unknown, already-run and
   * already-cancelled handles (and undefined) are ignored.
   */
  cancel(id: TaskId): void {
    const q = this.q_;
    const i = q.indexOf(id as Task);
    if (i >= 0) {
      q.splice(i, 1);
      if (!i) this.arm_();
    }
  }

  /**
   * Run every task whose deadline has come, in (deadline, insertion) order; tasks added during the
   * turn that are already due run in the same turn, up to maxPerTurn tasks (then the host timer is
   * re-armed with delay 0: the host's own events get their turn). A task's exception is caught,
   * counted and logged, and the loop goes on. Then re-arms the single host timer for the earliest
   * remaining deadline. A nested call (from inside a task) does nothing. Returns the number of tasks run.
   */
  runDue(): number {
    if (typeof WREN_DEVICE === 'undefined' && this.running_) return 0;
    this.running_ = true;
    let n = 0;
    const q = this.q_;
    while (q[0] && q[0].due <= this.now() && n < (typeof WREN_DEVICE === 'undefined' ? this.maxPerTurn_ : MAX_PER_TURN)) {
      const task = q.shift() as Task;
      n++;
      try {
        task.fn();
      } catch (e: any) {
        if (typeof WREN_DEVICE === 'undefined') this.errors++;
        // Log methods never throw (hal/types.ts). An Error shows its message, anything else itself.
        if (typeof WREN_DEVICE !== 'undefined' || this.log_) (this.log_ as Log).error('sched', 'task ' + (task.name || '?') + ' threw: ' + ((e && e.message) || e));
      }
    }
    this.running_ = false;
    this.arm_();
    return n;
  }

  /**
   * End the loop for good: drop every task, disarm the host timer, ignore tasks added later (they are
   * never run). What a power cut or the moment before deep sleep does to the firmware.
   */
  halt(): void {
    this.halted = true;
    this.q_.splice(0); // in place: runDue() may hold this array
    this.arm_();
  }

  /**
   * Keep exactly one host timer armed, for the earliest deadline (none when idle). Called when the
   * head of the queue changed and at the end of a turn (not during one: runDue() arms when it ends).
   * The last timer is cleared even when it has fired (then TimerHost.clear() does nothing), so the
   * timer's callback can be runDue() itself.
   */
  private arm_(): void {
    if (!this.running_) {
      const t = this.q_[0];
      if (typeof WREN_DEVICE !== 'undefined' || this.handle_ !== undefined) this.host_.clear(this.handle_);
      this.handle_ =
        t &&
        this.host_.set(typeof WREN_DEVICE !== 'undefined' ? t.due - this.now() : Math.min(Math.max(t.due - this.now(), 0), MAX_TIMER_MS), () => this.runDue());
    }
  }
}

/** The pending tasks in run order (for logs and tests): their handles, names and deadlines. */
export function pending(s: Scheduler): Array<{ id: TaskId; name: string; due: number }> {
  return s.q_.map(function (t) {
    return { id: t, name: t.name || '', due: t.due };
  });
}

/**
 * Run `fn` every `periodMs` (> 0) on `s`, first at now + periodMs. Deadlines do not drift (each is the
 * previous deadline + period); if the loop fell behind by more than a period, missed runs are
 * skipped, not bunched. The handle stays the same for every run: s.cancel(id) stops it, also from
 * inside fn.
 */
export function every(s: Scheduler, periodMs: number, fn: () => void, name?: string): TaskId {
  if (!(periodMs > 0)) throw new Error('every: periodMs must be > 0');
  let due = s.now() + periodMs;
  const run = function (): void {
    // The next run is queued before fn runs, so that s.cancel(id) from inside fn finds it; the first
    // run's task object takes its place in the queue (with its deadline), so the handle stays valid.
    const now = s.now();
    due = due + periodMs > now ? due + periodMs : now + periodMs;
    const next = s.at(due, run, name) as Task;
    const q = s.q_;
    const i = q.indexOf(next);
    if (i >= 0) {
      task.due = next.due;
      q[i] = task;
    }
    fn();
  };
  const task = s.at(due, run, name) as Task;
  return task;
}
