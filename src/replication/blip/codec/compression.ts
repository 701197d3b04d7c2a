/**
 * One persistent raw-DEFLATE context per direction (spec blip.md §2.5). Every compressed frame goes
 * through the same stream, sync-flushed, so later frames may back-reference earlier ones; a
 * one-shot `deflateRawSync` would start a fresh window each call and the peer could not inflate.
 *
 * Node's zlib streams are asynchronous. As in `ws`'s permessage-deflate, we collect 'data' output
 * and take it when the flush callback fires (Node runs the flush after the preceding write and
 * pushes all output before calling back). Callers must not start a new operation before the
 * previous promise settles: the BLIP connection processes each direction strictly in frame order.
 */
import { constants, createDeflateRaw, createInflateRaw, type DeflateRaw, type InflateRaw } from 'node:zlib';
import { BlipProtocolError, CLOSE_MESSAGE_TOO_BIG } from './errors.ts';

/** The tail of a Z_SYNC_FLUSH (an empty stored block); BLIP leaves it off the wire. */
export const SYNC_FLUSH_TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

interface Pending { resolve: (out: Buffer) => void; reject: (err: Error) => void }

abstract class ZlibPipe {
  protected chunks: Buffer[] = [];
  protected total = 0;
  protected pending: Pending | undefined;
  protected failure: Error | undefined;

  constructor(protected readonly stream: DeflateRaw | InflateRaw) {
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('error', (err: Error) => this.fail(this.wrapError(err)));
  }

  protected onData(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  protected abstract wrapError(err: Error): Error;

  /** Poisons the pipe: the pending and every later call reject (the connection is closing anyway). */
  protected fail(err: Error): void {
    if (!this.failure) this.failure = err;
    const p = this.pending;
    this.pending = undefined;
    this.chunks = [];
    this.total = 0;
    p?.reject(this.failure);
    this.stream.destroy();
  }

  protected run(inputs: Buffer[]): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.pending) return Promise.reject(new Error('zlib pipe used concurrently'));
    return new Promise<Buffer>((resolve, reject) => {
      this.pending = { resolve, reject };
      for (const input of inputs) this.stream.write(input);
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
  constructor(level = 6) {
    // Same parameters as LiteCore's deflateInit2(level 6, windowBits -15, memLevel 9).
    super(createDeflateRaw({ level, memLevel: 9, windowBits: 15 }));
  }

  protected wrapError(err: Error): Error { return err; }

  /** Deflates one frame's data and returns it without the 00 00 ff ff sync-flush trailer. */
  async compress(data: Buffer): Promise<Buffer> {
    const out = await this.run([data]);
    if (out.length < 4 || !out.subarray(out.length - 4).equals(SYNC_FLUSH_TRAILER)) {
      throw new Error('deflate output does not end with the sync-flush trailer');
    }
    return out.subarray(0, out.length - 4);
  }
}

export class FrameInflater extends ZlibPipe {
  private limit = Infinity;

  constructor() {
    super(createInflateRaw({ windowBits: 15 }));
  }

  protected wrapError(err: Error): Error {
    return err instanceof BlipProtocolError ? err : new BlipProtocolError(`invalid compressed data: ${err.message}`);
  }

  protected override onData(chunk: Buffer): void {
    super.onData(chunk);
    // Stop a deflate bomb early instead of buffering whatever it expands to.
    if (this.total > this.limit) this.fail(new BlipProtocolError('message too big', CLOSE_MESSAGE_TOO_BIG));
  }

  /** Inflates one frame's payload (trailer re-appended); fails if the output would exceed `maxOutput`. */
  decompress(payload: Buffer, maxOutput = Infinity): Promise<Buffer> {
    this.limit = maxOutput;
    return this.run([payload, SYNC_FLUSH_TRAILER]);
  }
}
