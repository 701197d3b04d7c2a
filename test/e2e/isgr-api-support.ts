/**
 * Test support for the ISGR registry and API: a replicator factory whose replicators report the
 * states and counters the test tells them to (the real one is src/replication/active/), and a
 * gateway started in this process with it (the registry's factory is injected, as the lead wires
 * the real one at merge).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigText } from '../../src/config/index.ts';
import { Gateway } from '../../src/gateway.ts';
import { Logger } from '../../src/log/index.ts';
import {
  type ActiveReplicator, type CreateReplicator, type ReplicationConfig, type ReplicationCounters, type ReplicatorSnapshot,
  type ReplicatorState, zeroCounters,
} from '../../src/replication/isgr/types.ts';

export class TestReplicator implements ActiveReplicator {
  private state: ReplicatorState = 'stopped';
  private error?: string;
  counters: ReplicationCounters = zeroCounters();
  private readonly listeners = new Set<(s: ReplicatorSnapshot) => void>();
  /** While set, reset() waits for it (to observe `resetting`). */
  resetGate?: Promise<void>;
  constructor(readonly config: ReplicationConfig, private readonly factory: TestFactory) {}
  get id(): string { return this.config.replication_id; }

  /** Starting, then running; a one-shot replication "reads" 3 documents and stops, as a finished one does. */
  start(): void {
    this.factory.started(this.id);
    this.set('starting');
    setImmediate(() => {
      if (this.state !== 'starting') return;
      this.set('running');
      if (!this.config.continuous && !this.factory.holdOneShots) {
        this.counters.docs_read += 3;
        this.counters.last_seq_pull = String(Number(this.counters.last_seq_pull || 0) + 3);
        this.set('stopped');
      }
    });
  }

  async stop(): Promise<void> {
    this.factory.stops.push(this.id);
    this.error = undefined;
    this.set('stopped');
  }

  async reset(): Promise<void> {
    await this.resetGate;
    this.factory.resets.push(this.id);
    this.counters = zeroCounters();
    this.set(this.state);
  }

  /** The test says what happens: a state (with an error message), counters moving. */
  report(state: ReplicatorState, counters: Partial<ReplicationCounters> = {}, error?: string): void {
    Object.assign(this.counters, counters);
    this.error = error;
    this.set(state);
  }

  snapshot(): ReplicatorSnapshot {
    const s: ReplicatorSnapshot = { state: this.state, counters: { ...this.counters } };
    if (this.error) s.error_message = this.error;
    return s;
  }

  onChange(listener: (s: ReplicatorSnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => { this.listeners.delete(listener); };
  }

  private set(state: ReplicatorState): void {
    this.state = state;
    for (const l of this.listeners) l(this.snapshot());
  }
}

export class TestFactory {
  /** Every replicator built, newest last. */
  readonly built: TestReplicator[] = [];
  readonly starts = new Map<string, number>();
  readonly stops: string[] = [];
  readonly resets: string[] = [];
  holdOneShots = false;
  nextResetGate?: Promise<void>;

  readonly create: CreateReplicator = (_db, config) => {
    const r = new TestReplicator(config, this);
    if (this.nextResetGate) r.resetGate = this.nextResetGate;
    this.built.push(r);
    return r;
  };

  started(id: string): void { this.starts.set(id, (this.starts.get(id) ?? 0) + 1); }
  totalStarts(): number { return [...this.starts.values()].reduce((a, b) => a + b, 0); }
  /** The replicator this node built last for `id`. */
  latest(id: string): TestReplicator | undefined { return this.built.filter((r) => r.id === id).at(-1); }
}

export interface IsgrGateway {
  gateway: Gateway;
  factory: TestFactory;
  adminUrl: string;
  publicUrl: string;
  metricsUrl: string;
  logs: string[];
  stop(): Promise<void>;
}

/** A gateway in this process with the test factory; `databases` as in a 2.x config file. */
export async function startIsgrGateway(
  databases: Record<string, Record<string, unknown>>, opts: { leaseMs?: number; factory?: TestFactory; nodeId?: string } = {},
): Promise<IsgrGateway> {
  const config = parseConfigText(JSON.stringify({ databases }), 'isgr test config');
  const logs: string[] = [];
  const factory = opts.factory ?? new TestFactory();
  const gateway = new Gateway(config, {
    logger: new Logger({ level: 'debug', write: (l) => logs.push(l) }),
    interface: '127.0.0.1:0', adminInterface: '127.0.0.1:0', metricsInterface: '127.0.0.1:0',
    replication: { createReplicator: factory.create, leaseMs: opts.leaseMs, nodeId: opts.nodeId },
  });
  const a = await gateway.start();
  return {
    gateway, factory, logs,
    adminUrl: `http://127.0.0.1:${a.admin.port}`, publicUrl: `http://127.0.0.1:${a.public.port}`, metricsUrl: `http://127.0.0.1:${a.metrics.port}`,
    stop: () => gateway.stop(),
  };
}

/** Polls `check` until it returns a value other than undefined (generous bound; no timing assertion). */
export async function eventually<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) { last = err; }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function tempDir(prefix: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
