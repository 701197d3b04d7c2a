/**
 * Sync Gateway's event queue (`db/event_manager.go`, spec §4.3): room for 3 × max_processes
 * events, at most max_processes handled at once, taken in FIFO order. A raiser that finds it full
 * waits up to `wait_for_process` ms for room, then the event is dropped: the write goes on.
 */
export type Job = () => Promise<void>;

export class BoundedQueue {
  private readonly jobs: Job[] = [];
  private readonly waiting: { job: Job; resolve: (queued: boolean) => void; timer: NodeJS.Timeout }[] = [];
  private running = 0;
  private idleWaiters: (() => void)[] = [];
  readonly capacity: number;

  constructor(private readonly concurrency: number, readonly waitMs: number) {
    this.capacity = 3 * concurrency;
  }

  /** Events queued or being handled. */
  get pending(): number { return this.jobs.length + this.running + this.waiting.length; }

  /**
   * Resolves true once queued, false when dropped after `waitMs` of a full queue, or at `deadline`
   * (a `performance.now()` time) if that comes first: several events raised by one write share one
   * deadline, so the write as a whole waits at most `wait_for_process`.
   */
  push(job: Job, deadline = Infinity): Promise<boolean> {
    if (this.offer(job)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const entry = {
        job, resolve,
        timer: setTimeout(() => {
          const i = this.waiting.indexOf(entry);
          if (i >= 0) this.waiting.splice(i, 1);
          resolve(false);
        }, Math.max(0, Math.min(this.waitMs, deadline - performance.now()))),
      };
      this.waiting.push(entry);
    });
  }

  /**
   * Queues `job` if there is room now and nobody is waiting for room; false otherwise (then `push`
   * waits). The write path tries this first: one event per written document, and most find room.
   */
  offer(job: Job): boolean {
    if (this.jobs.length >= this.capacity || this.waiting.length > 0) return false;
    this.jobs.push(job);
    this.pump();
    return true;
  }

  /** Resolves when nothing is queued or running (or after `ms`). */
  idle(ms: number): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.idleWaiters.push(() => { clearTimeout(t); resolve(); });
    });
  }

  private pump(): void {
    while (this.running < this.concurrency && this.jobs.length > 0) {
      const job = this.jobs.shift()!;
      this.admitWaiting();
      this.running++;
      job().then(this.finished, this.finished);
    }
  }

  private readonly finished = (): void => {
    this.running--;
    this.pump();
    if (this.pending === 0) for (const w of this.idleWaiters.splice(0)) w();
  };

  /** Room freed: the longest-waiting raiser gets it. */
  private admitWaiting(): void {
    while (this.jobs.length < this.capacity && this.waiting.length > 0) {
      const w = this.waiting.shift()!;
      clearTimeout(w.timer);
      this.jobs.push(w.job);
      w.resolve(true);
    }
  }
}
