// The single loop: the one owner of every timer in the firmware.
//
// Tasks run to completion, one after the other. The scheduler keeps its tasks in an array sorted by
// (deadline, insertion order), arms exactly ONE host timer for the earliest deadline, and when it fires
// runs everything that is due. Nothing else in firmware/ touches time: transports' events are post()ed
// so that they too run to completion inside the loop, never re-entrantly.
//
// Time: the scheduler keeps its own monotonic timeline (now()), unwrapped: it starts at the clock's
// value at construction and adds the clock's wrap-safe elapsed time at every read, so a device clock
// that wraps at 2^32 ms never reaches the task queue. at() and nextDeadline() use that timeline. On the
// virtual clock (which starts at 0 and does not wrap) scheduler time equals clock time.
//
// Espruino-safe: no Map/Set, no default/rest params, no class fields, no self-reference in the body.
// Kept small (the firmware has a 32 KB budget): array methods over hand-written loops, no single-use
// helpers, private members named with a trailing '_' (mangled to short names in Espruino bundles).

import type { Clock, Log, TimerHandle, TimerHost } from '../../hal/types';

/** Identifies a task for cancel(). Positive integers, never reused. */
export type TaskId = number;

/** Longest single host sleep (setTimeout's limit); longer waits re-arm when it fires. */
export const MAX_TIMER_MS = 2147483647;

const WRAP_MS = 4294967296;
const HALF_WRAP_MS = 2147483648;

/** A scheduled task (internal; exported for the type of pending()). */
export interface Task {
  id: TaskId;
  /** Deadline on the scheduler timeline. Ties run in insertion order (insert_() goes after equal deadlines). */
  due: number;
  fn: () => void;
  name: string;
  /** > 0 for every(): the period in ms. */
  periodMs: number;
  /** Set when cancelled while running (so a periodic task is not re-inserted). */
  cancelled: boolean;
}

/**
 * Wrap-safe `to - from` for two readings of a clock that may wrap at 2^32 ms. A small backwards step
 * (a misbehaving clock) counts as 0, never as a wrap.
 */
export function elapsedMs(from: number, to: number): number {
  const d = to - from;
  return d >= 0 ? d : d < -HALF_WRAP_MS ? d + WRAP_MS : 0;
}

export class Scheduler {
  /** Tasks not yet run, sorted by (due, insertion order). */
  private q_: Task[];
  private clock_: Clock;
  private host_: TimerHost;
  private log_: Log | undefined;
  private maxPerTurn_: number;
  /** Scheduler timeline (unwrapped ms) and the raw clock value it was last synced to. */
  private t_: number;
  private lastRaw_: number;
  private nextId_: number;
  /** The armed host timer (undefined = none) and the deadline it was armed for. */
  private handle_: TimerHandle;
  private armedFor_!: number;
  private running_: boolean;
  private current_: Task | undefined;
  private fire_: () => void;
  /** Tasks that threw (caught and logged). */
  errors: number;
  /** Tasks run since construction. */
  ran: number;
  /** Turns that stopped at maxPerTurn and yielded to the host with work still due. */
  yields: number;
  /** Set by halt(): the loop is over. */
  halted: boolean;

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
    this.maxPerTurn_ = (maxPerTurn as number) > 0 ? (maxPerTurn as number) : 64;
    this.t_ = this.lastRaw_ = clock.now();
    this.nextId_ = 1;
    this.running_ = this.halted = false;
    this.errors = this.ran = this.yields = 0;
    const self = this;
    this.fire_ = function () {
      self.handle_ = undefined;
      self.runDue();
    };
  }

  /** Milliseconds on the scheduler timeline (monotonic, never wraps). */
  now(): number {
    const raw = this.clock_.now();
    this.t_ += elapsedMs(this.lastRaw_, raw);
    this.lastRaw_ = raw;
    return this.t_;
  }

  /**
   * Run `fn` at `timeMs` on the scheduler timeline. A time already past counts as now: the task runs
   * after the tasks already due (like post()), never ahead of them.
   */
  at(timeMs: number, fn: () => void, name?: string): TaskId {
    const now = this.now();
    return this.add_(timeMs > now ? timeMs : now, 0, fn, name);
  }

  /** Run `fn` once, `delayMs` from now (negative counts as 0). */
  after(delayMs: number, fn: () => void, name?: string): TaskId {
    return this.add_(this.now() + (delayMs > 0 ? delayMs : 0), 0, fn, name);
  }

  /**
   * Run `fn` every `periodMs` (> 0), first at now + periodMs. Deadlines do not drift (each is the
   * previous deadline + period); if the loop fell behind by more than a period, missed runs are
   * skipped, not bunched. The id stays the same for every run: cancel(id) stops it, also from inside fn.
   */
  every(periodMs: number, fn: () => void, name?: string): TaskId {
    if (!(periodMs > 0)) throw new Error('every: periodMs must be > 0');
    return this.add_(this.now() + periodMs, periodMs, fn, name);
  }

  /**
   * Run `fn` soon: in this turn if the loop is running, otherwise in the next one. Used to deliver
   * events (transport data, link changes) into the loop so they run to completion, never re-entrantly.
   * Posted work runs in post order, after tasks already due.
   */
  post(fn: () => void, name?: string): TaskId {
    return this.add_(this.now(), 0, fn, name);
  }

  /**
   * Cancel a task. Idempotent; unknown, already-run and already-cancelled ids (and undefined) are
   * ignored. Returns true if a pending task (or the periodic task now running) was cancelled.
   */
  cancel(id: TaskId | undefined): boolean {
    const was = this.has(id);
    const cur = this.current_;
    if (cur && cur.id === id) {
      cur.cancelled = true;
    } else if (was) {
      const i = this.q_.findIndex((t) => t.id === id);
      this.q_.splice(i, 1);
      if (!i) this.arm_();
    }
    return was;
  }

  /** True if the task is still pending (or is a periodic task not cancelled). */
  has(id: TaskId | undefined): boolean {
    const cur = this.current_;
    if (cur && cur.id === id) return cur.periodMs > 0 && !cur.cancelled;
    return this.q_.some((t) => t.id === id);
  }

  /** Number of pending tasks. */
  size(): number {
    return this.q_.length;
  }

  /** The earliest deadline on the scheduler timeline, or undefined when nothing is scheduled. */
  nextDeadline(): number | undefined {
    const t = this.q_[0];
    return t && t.due;
  }

  /** Milliseconds until the earliest deadline (0 if due), or undefined when nothing is scheduled. */
  nextDelay(): number | undefined {
    const t = this.q_[0];
    if (!t) return undefined;
    const d = t.due - this.now();
    return d > 0 ? d : 0;
  }

  /** Names and deadlines of the pending tasks, in run order (for logs and tests). */
  pending(): Array<{ id: TaskId; name: string; due: number }> {
    return this.q_.map((t) => ({ id: t.id, name: t.name, due: t.due }));
  }

  /**
   * Run every task whose deadline has come, in (deadline, insertion) order; tasks added during the
   * turn that are already due run in the same turn, up to maxPerTurn tasks. A task's exception is
   * caught, counted and logged, and the loop goes on. Then re-arms the single host timer for the
   * earliest remaining deadline. A nested call (from inside a task) does nothing. Returns the number
   * of tasks run.
   */
  runDue(): number {
    if (this.running_) return 0;
    this.running_ = true;
    let n = 0;
    const q = this.q_;
    while (q.length > 0 && q[0].due <= this.now()) {
      if (n >= this.maxPerTurn_) {
        this.yields++;
        break;
      }
      const task = q.shift() as Task;
      n++;
      this.ran++;
      this.current_ = task;
      try {
        task.fn();
      } catch (e) {
        this.errors++;
        const log = this.log_;
        try {
          const m = e && typeof e === 'object' ? (e as { message?: unknown }).message : undefined;
          if (log) log.error('sched', 'task ' + (task.name || '#' + task.id) + ' threw: ' + (typeof m === 'string' ? m : String(e)));
        } catch (e2) {
          // a failing log must not stop the loop
        }
      }
      this.current_ = undefined;
      const p = task.periodMs;
      if (p > 0 && !task.cancelled) {
        const due = task.due + p;
        task.due = due > this.t_ ? due : this.t_ + p;
        this.insert_(task);
      }
    }
    this.running_ = false;
    this.arm_();
    return n;
  }

  /**
   * End the loop for good: drop every task, disarm the host timer, ignore tasks added later (their ids
   * are never run). What a power cut or the moment before deep sleep does to the firmware.
   */
  halt(): void {
    this.halted = true;
    this.q_.splice(0, this.q_.length); // in place: runDue() may hold this array
    this.disarm_();
  }

  private add_(due: number, periodMs: number, fn: () => void, name?: string): TaskId {
    const id = this.nextId_++;
    if (!this.halted && !this.insert_({ id: id, due: due, fn: fn, name: name || '', periodMs: periodMs, cancelled: false })) this.arm_();
    return id;
  }

  /** Insert in (due, insertion) order: after every task with due <= its due. Returns the index. */
  private insert_(task: Task): number {
    const q = this.q_;
    let lo = 0;
    let hi = q.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (q[mid].due <= task.due) lo = mid + 1;
      else hi = mid;
    }
    q.splice(lo, 0, task);
    return lo;
  }

  private disarm_(): void {
    const h = this.handle_;
    if (h !== undefined) this.host_.clear(h);
    this.handle_ = undefined;
  }

  /** Keep exactly one host timer armed, for the earliest deadline (none when idle). */
  private arm_(): void {
    const t = this.q_[0];
    if (this.running_ || (t && this.handle_ !== undefined && this.armedFor_ === t.due)) return;
    this.disarm_();
    if (!t) return;
    const d = t.due - this.now();
    this.armedFor_ = t.due;
    this.handle_ = this.host_.set(d < 0 ? 0 : d > MAX_TIMER_MS ? MAX_TIMER_MS : d, this.fire_);
  }
}
