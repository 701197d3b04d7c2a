/**
 * One persistent raw-DEFLATE context per direction (spec blip.md §2.5). Every compressed frame goes
 * through the same stream, sync-flushed, so later frames may back-reference earlier ones; a
 * one-shot `deflateRawSync` would start a fresh window each call and the peer could not inflate.
 *
 * Two ways to drive that one context:
 *
 * - Synchronous (the normal case). Node has no public API that runs a *persistent* zlib context
 *   synchronously: `zlib.inflateRawSync` and a stream's `_processChunk(chunk, flag)` (its sync
 *   path) both close the context after the call. So we call the stream's native handle directly,
 *   `handle.writeSync(flush, in, inOff, inLen, out, outOff, outLen)`, which is what
 *   `_processChunk` does inside, reading `[availOut, availIn]` from the stream's `_writeState`.
 *   Why bother: the async path costs a threadpool round trip *and an event-loop turn* per frame,
 *   and BLIP frames must be handled strictly in order, so every compressed frame waited a turn;
 *   under load (SQLite commits on the same loop) that was milliseconds per frame, and pushed revs
 *   trickled in one per turn instead of arriving together. Deflating or inflating one frame
 *   (≤ 16 KiB) takes microseconds, far less than the turn it saved.
 * - Asynchronous fallback, if those internals are missing (a future Node): stream write +
 *   flush(Z_SYNC_FLUSH), collecting 'data' until the flush callback (as `ws` does). Callers must
 *   not start an operation before the previous promise settles.
 *
 * Both produce the same bytes from the same context; tests run both.
 */
import { constants, createDeflateRaw, createInflateRaw, type DeflateRaw, type InflateRaw } from 'node:zlib';
import { BlipProtocolError, CLOSE_MESSAGE_TOO_BIG } from './errors.ts';

/** The tail of a Z_SYNC_FLUSH (an empty stored block); BLIP leaves it off the wire. */
export const SYNC_FLUSH_TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/** Inflate output space per native call: a whole frame (≤ 16,374 data bytes) fits in one call. */
const SCRATCH_BYTES = 16 * 1024;

/**
 * Output space for deflating `n` bytes: above zlib's worst case (deflateBound's
 * n + n/8 + n/64 + 5, plus the sync-flush block), so one native call always finishes. Were the
 * output to fill the space exactly, the follow-up call zlib asks for would emit a second, empty,
 * sync-flush block: harmless to the peer, but 5 wasted bytes.
 */
function deflateRoom(n: number): number {
  return n + (n >> 3) + (n >> 6) + 64;
}

export interface ZlibPipeOptions {
  /** Use the synchronous native path when this Node has it (default true); false forces the async stream. */
  sync?: boolean;
}

/** The parts of a Node zlib stream's internals the synchronous path uses (see the module comment). */
interface NativeHandle {
  writeSync(flush: number, input: Uint8Array, inOff: number, inLen: number, out: Uint8Array, outOff: number, outLen: number): void;
}
interface ZlibInternals { _handle?: NativeHandle | null; _writeState?: unknown }

/** The native handle and its result array, or undefined when this Node's internals differ. */
function nativeOf(stream: DeflateRaw | InflateRaw): { handle: NativeHandle; state: Uint32Array } | undefined {
  const s = stream as unknown as ZlibInternals;
  const handle = s._handle;
  const state = s._writeState;
  if (!handle || typeof handle.writeSync !== 'function' || !(state instanceof Uint32Array) || state.length < 2) return undefined;
  return { handle, state };
}

interface Pending { resolve: (out: Buffer) => void; reject: (err: Error) => void }

abstract class ZlibPipe {
  private chunks: Buffer[] = [];
  private total = 0;
  /** Largest output accepted from the current operation (inflate's deflate-bomb guard). */
  protected limit = Infinity;
  /** Output space to offer zlib per native call for an input of `n` bytes. */
  protected abstract roomFor(n: number): number;
  private pending: Pending | undefined;
  private failure: Error | undefined;
  private readonly native: { handle: NativeHandle; state: Uint32Array } | undefined;
  private scratch: Buffer | undefined;

  constructor(protected readonly stream: DeflateRaw | InflateRaw, opts: ZlibPipeOptions) {
    this.native = opts.sync === false ? undefined : nativeOf(stream);
    // In sync mode a zlib error is thrown where it happens; Node still emits 'error' a tick later,
    // which must have a listener (fail() is idempotent).
    stream.on('error', (err: Error) => this.fail(this.wrapError(err)));
    if (!this.native) stream.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  /** True when operations complete synchronously (the native path is available and chosen). */
  get synchronous(): boolean { return this.native !== undefined; }

  protected abstract wrapError(err: Error): Error;

  private tooBig(): Error { return new BlipProtocolError('message too big', CLOSE_MESSAGE_TOO_BIG); }

  private onData(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.total += chunk.length;
    // Stop a deflate bomb early instead of buffering whatever it expands to.
    if (this.total > this.limit) this.fail(this.tooBig());
  }

  /** Poisons the pipe: the pending and every later call fail (the connection is closing anyway). */
  protected fail(err: Error): Error {
    if (!this.failure) this.failure = err;
    const p = this.pending;
    this.pending = undefined;
    this.chunks = [];
    this.total = 0;
    p?.reject(this.failure);
    this.stream.destroy();
    return this.failure;
  }

  /** Runs `inputs` through the context and sync-flushes: synchronously if possible, else a promise. */
  protected process(inputs: Buffer[]): Buffer | Promise<Buffer> {
    return this.native ? this.runSync(this.native, inputs) : this.runAsync(inputs);
  }

  private runSync(native: { handle: NativeHandle; state: Uint32Array }, inputs: Buffer[]): Buffer {
    if (this.failure) throw this.failure;
    // A destroyed stream has freed its context; writeSync on it would abort the process.
    if (this.stream.destroyed || (this.stream as unknown as ZlibInternals)._handle !== native.handle) {
      throw this.fail(new Error('zlib context closed'));
    }
    const want = inputs.reduce((m, b) => Math.max(m, this.roomFor(b.length)), 0);
    if (!this.scratch || this.scratch.length < want) this.scratch = Buffer.allocUnsafe(want);
    const scratch = this.scratch;
    const out: Buffer[] = [];
    let total = 0;
    for (let i = 0; i < inputs.length; i++) {
      const input = inputs[i];
      // Only the last input is sync-flushed: the output ends with the 00 00 ff ff trailer exactly once.
      const flush = i === inputs.length - 1 ? constants.Z_SYNC_FLUSH : constants.Z_NO_FLUSH;
      let inOff = 0;
      let inLen = input.length;
      for (;;) {
        // Never ask for more than one byte past the limit: a bomb stops right there. (At least one
        // byte, and always within the scratch: the native call aborts the process on bad bounds.)
        const room = Math.max(1, Math.min(scratch.length, this.limit - total + 1));
        native.handle.writeSync(flush, input, inOff, inLen, scratch, 0, room);
        if (this.stream.destroyed) throw this.fail(this.wrapError(this.stream.errored ?? new Error('zlib failed')));
        const availOut = native.state[0];
        const availIn = native.state[1];
        const have = room - availOut;
        if (have > 0) {
          out.push(Buffer.from(scratch.subarray(0, have))); // copy: the scratch is reused
          total += have;
          if (total > this.limit) throw this.fail(this.tooBig());
        }
        inOff += inLen - availIn;
        inLen = availIn;
        if (availOut === 0) continue; // output space ran out: zlib may have more
        // Output space left over yet input unread: zlib stopped at the end of the deflate stream.
        if (inLen > 0) throw this.fail(this.wrapError(new Error('data after the end of the compressed stream')));
        break;
      }
    }
    return out.length === 1 ? out[0] : Buffer.concat(out, total);
  }

  private runAsync(inputs: Buffer[]): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.pending) return Promise.reject(new Error('zlib pipe used concurrently'));
    return new Promise<Buffer>((resolve, reject) => {
      this.pending = { resolve, reject };
      for (const input of inputs) this.stream.write(input);
      // Node runs the flush after the preceding writes and pushes all output before calling back.
      this.stream.flush(constants.Z_SYNC_FLUSH, () => {
        const p = this.pending;
        if (!p) return; // already failed
        this.pending = undefined;
        const out = Buffer.concat(this.chunks, this.total);
        this.chunks = [];
        this.total = 0;
        p.resolve(out);
      });
    });
  }

  close(): void {
    if (!this.stream.destroyed) this.stream.destroy();
  }
}

export class FrameDeflater extends ZlibPipe {
  constructor(level = 6, opts: ZlibPipeOptions = {}) {
    // Same parameters as LiteCore's deflateInit2(level 6, windowBits -15, memLevel 9).
    super(createDeflateRaw({ level, memLevel: 9, windowBits: 15 }), opts);
  }

  protected wrapError(err: Error): Error { return err; }

  protected roomFor(n: number): number { return deflateRoom(n); }

  /** Deflates one frame's data, without the 00 00 ff ff sync-flush trailer; sync when `synchronous`. */
  compressFrame(data: Buffer): Buffer | Promise<Buffer> {
    const out = this.process([data]);
    return out instanceof Promise ? out.then(stripTrailer) : stripTrailer(out);
  }

  /** As compressFrame, always as a promise. */
  async compress(data: Buffer): Promise<Buffer> { return this.compressFrame(data); }
}

function stripTrailer(out: Buffer): Buffer {
  if (out.length < 4 || !out.subarray(out.length - 4).equals(SYNC_FLUSH_TRAILER)) {
    throw new Error('deflate output does not end with the sync-flush trailer');
  }
  return out.subarray(0, out.length - 4);
}

export class FrameInflater extends ZlibPipe {
  constructor(opts: ZlibPipeOptions = {}) {
    super(createInflateRaw({ windowBits: 15 }), opts);
  }

  protected roomFor(): number { return SCRATCH_BYTES; }

  protected wrapError(err: Error): Error {
    return err instanceof BlipProtocolError ? err : new BlipProtocolError(`invalid compressed data: ${err.message}`);
  }

  /**
   * Inflates one frame's payload (trailer re-appended); fails with "message too big" (1009) as soon
   * as the output would exceed `maxOutput`. Sync when `synchronous`.
   */
  decompressFrame(payload: Buffer, maxOutput = Infinity): Buffer | Promise<Buffer> {
    this.limit = maxOutput >= 0 ? maxOutput : 0; // NaN or negative: nothing may come out
    return this.process([payload, SYNC_FLUSH_TRAILER]);
  }

  /** As decompressFrame, always as a promise. */
  async decompress(payload: Buffer, maxOutput = Infinity): Promise<Buffer> { return this.decompressFrame(payload, maxOutput); }
}
