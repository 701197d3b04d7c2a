/**
 * Best-effort webhooks POST from a worker thread (webhook-worker.mjs). Sync Gateway's model puts
 * one POST per written revision on the write path; in the gateway's own event loop that POST cost
 * more CPU than writing the document in a 100-document batch (the push ran at 0.40-0.50 of its
 * speed without handlers). Here the event loop only passes the JSON text across, batched per turn
 * of the loop, and the HTTP work runs on the other core.
 *
 * The queue (queue.ts) stays in this thread and is unchanged: a job is in flight until the worker
 * reports its POST's outcome, so max_processes, the 3 × max_processes bound, wait_for_process and
 * the drop count mean what they meant.
 */
import { Worker } from 'node:worker_threads';
import { redactUrl, splitCredentials, type PostOutcome, type WebhookEndpoint } from './webhook.ts';

export class DeliveryThread {
  private worker?: Worker;
  private nextHook = 0;
  private nextRequest = 0;
  private readonly inFlight = new Map<number, (o: PostOutcome) => void>();
  private readonly hooks = new Map<number, Record<string, unknown>>();
  private outgoing: [number, number, string][] = [];
  private closed = false;

  constructor(private readonly onError: (msg: string) => void) {}

  /** A webhook whose POSTs go through this thread. */
  endpoint(url: string, timeoutMs: number, maxSockets: number): WebhookEndpoint {
    const id = this.nextHook++;
    const { target, authorization } = splitCredentials(url);
    const hook = { hook: id, url: target.toString(), authorization, timeoutMs, maxSockets };
    this.hooks.set(id, hook);
    // Started with the first webhook, not the first event: spawning a thread and loading its
    // modules takes tens of milliseconds that would otherwise fall on the first write.
    if (this.worker) this.worker.postMessage(hook); else this.started(); // a new worker is told every hook
    return {
      redactedUrl: redactUrl(url),
      post: (body) => this.post(id, body),
      close: () => { this.hooks.delete(id); this.worker?.postMessage({ close: id }); },
    };
  }

  private post(hookId: number, body: string): Promise<PostOutcome> {
    if (this.closed) return Promise.resolve({ ok: false, error: 'event handlers closed', unreachable: false });
    const requestId = this.nextRequest++;
    if (this.outgoing.length === 0) setImmediate(() => this.flush());
    this.outgoing.push([requestId, hookId, body]);
    return new Promise((resolve) => this.inFlight.set(requestId, resolve));
  }

  private flush(): void {
    const posts = this.outgoing;
    this.outgoing = [];
    if (posts.length) this.started().postMessage({ posts });
  }

  /** The running worker (a new one after a crash). A database without best-effort handlers has none. */
  private started(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(new URL('./webhook-worker.mjs', import.meta.url));
    w.on('message', (m: { done: [number, PostOutcome][] }) => {
      for (const [id, outcome] of m.done) {
        const resolve = this.inFlight.get(id);
        this.inFlight.delete(id);
        resolve?.(outcome);
      }
    });
    // A dead worker fails what it held; the next POST starts a new one.
    const died = (why: string) => {
      if (this.worker !== w) return;
      this.worker = undefined;
      if (!this.closed) this.onError(`Events: webhook delivery thread stopped (${why}); restarting on the next event`);
      for (const [id, resolve] of this.inFlight) { this.inFlight.delete(id); resolve({ ok: false, error: `delivery thread stopped: ${why}`, unreachable: false }); }
    };
    w.on('error', (e) => died(e.message));
    w.on('exit', (code) => died(`exit ${code}`));
    w.unref(); // after the listeners (adding one refs it again): close() ends it, a forgotten one must not keep the process alive
    this.worker = w;
    for (const hook of this.hooks.values()) w.postMessage(hook);
    return w;
  }

  /** Ends the thread; POSTs still in flight count as failed. */
  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    if (w) await w.terminate();
  }
}
