/** The real `bin/syncgate.js` as a child process, for tests that need a whole process (kill, restart). */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { resolve } from 'node:path';

export const BIN = resolve(import.meta.dirname, '../../bin/syncgate.js');

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
    s.on('error', rej);
  });
}

export interface CliProcess {
  child: ChildProcess;
  /** The last 64 KB of stdout and stderr. */
  output(): string;
}

/** Starts the CLI and resolves once the public listener answers `GET /` with 200. */
export async function startCli(args: string[], cwd: string, publicPort: number, timeoutMs = 30_000): Promise<CliProcess> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  // Always drained, so a chatty process never blocks on a full pipe.
  const keep = (d: Buffer) => { out = (out + d.toString()).slice(-65536); };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`syncgate exited early (${child.exitCode ?? child.signalCode}):\n${out}`);
    try {
      const r = await fetch(`http://127.0.0.1:${publicPort}/`);
      if (r.status === 200) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`syncgate did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, output: () => out };
}

/** Sends a signal and resolves with the exit code (or the signal name) once the process is gone. */
export function stopCli(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | string | null> {
  return new Promise((res) => {
    if (child.exitCode !== null || child.signalCode !== null) return res(child.exitCode ?? child.signalCode);
    child.once('exit', (code, sig) => res(code ?? sig));
    child.kill(signal);
  });
}
