/**
 * A BLIP v3 connection over a `ws` WebSocket, for either end (spec blip.md §2). It owns the
 * per-direction codecs (running CRC32, one deflate context each way), assembles incoming frames
 * into messages (sending ACKs as bytes arrive), dispatches requests to one handler, matches
 * responses to our requests, and runs the sender loop (multiplexing, urgent priority, the
 * 128,000-byte unacked window per message, and the WebSocket's own buffered amount).
 *
 * Any protocol violation by the peer closes this connection only (1002, or 1003 for a text
 * message, or 1009 for an over-size message) after emitting 'error'.
 */
import { EventEmitter } from 'node:events';
import type { RawData, WebSocket } from 'ws';
import { BlipProtocolError, CLOSE_INTERNAL_ERROR, CLOSE_MESSAGE_TOO_BIG, CLOSE_UNSUPPORTED_DATA } from './codec/errors.ts';
import { FrameDecoder, FrameEncoder, type DataFrame, type DecodedFrame } from './codec/frame-codec.ts';
import {
  FLAG_COMPRESSED, FLAG_MORECOMING, FLAG_NOREPLY, FLAG_URGENT, FrameType, decodeFrameHeader, encodeAckFrame,
} from './codec/frame.ts';
import { decodeMessage, encodeMessage } from './codec/properties.ts';
import { IncomingRequest, IncomingResponse, bodyToBuffer } from './messages.ts';
import { Outbox, type OutgoingMessage } from './outbox.ts';
import type {
  BlipConnectionOptions, BlipLogger, BlipProperties, BlipRequest, BlipResponse, BlipStats, SendOptions,
} from './types.ts';

export type {
  BlipConnectionOptions, BlipLogger, BlipMessageIn, BlipProperties, BlipRequest, BlipResponse, BlipStats, SendOptions,
} from './types.ts';
export { BlipProtocolError } from './codec/errors.ts';

export const DEFAULT_MAX_MESSAGE_BYTES = 20 * 1024 * 1024;
/** Send an ACK each time a message's received byte count crosses a multiple of this (go-blip). */
const ACK_INTERVAL = 50_000;
/** Above this many bytes buffered in the WebSocket, the sender waits for the socket to drain. */
const WS_HIGH_WATER = 256 * 1024;
/** Pause reading the socket while this many received frames await decoding (async-inflate fallback only). */
const RX_QUEUE_PAUSE = 64;
/** After our close frame, how long to wait for the peer's before dropping the TCP connection. */
const CLOSE_TIMEOUT_MS = 5_000;
/**
 * Cap on all partially received messages together, as a multiple of maxMessageBytes: the per
 * message limit alone would let a peer open many half-sent messages and hold their bytes.
 */
const INCOMPLETE_BYTES_FACTOR = 4;
const WS_OPEN = 1;
const WS_CONNECTING = 0;

/** An incoming message being reassembled from frames. */
interface Partial {
  flags: number;
  type: FrameType;
  compressed: boolean;
  chunks: Buffer[];
  size: number;
  wireBytes: number;
}

interface PendingReply {
  resolve: (res: BlipResponse) => void;
  reject: (err: Error) => void;
  partial?: Partial;
}

export class BlipConnection extends EventEmitter {
  private readonly ws: WebSocket;
  private readonly maxMessageBytes: number;
  private readonly log: BlipLogger;
  readonly role: 'server' | 'client';

  private readonly encoder: FrameEncoder;
  private readonly decoder: FrameDecoder;
  private readonly outbox = new Outbox();
  private handler: ((req: BlipRequest) => void | Promise<void>) | undefined;

  private lastOutgoingRequest = 0;
  private lastIncomingRequest = 0;
  private readonly incomingRequests = new Map<number, Partial>();
  private readonly pendingReplies = new Map<number, PendingReply>();
  /** Bytes held by incoming messages not yet complete (see INCOMPLETE_BYTES_FACTOR). */
  private incompleteBytes = 0;

  private sending = false;
  /**
   * Received frames not yet handled, in wire order. Frames normally decode synchronously, so this
   * stays empty and each frame is handled inside its 'message' event: frames that arrive together
   * (e.g. several pushed revs) reach the handlers in the same tick and get batched there. Only with
   * the async zlib fallback do frames wait here for the previous inflate.
   */
  private readonly rxQueue: Buffer[] = [];
  private rxBusy = false;
  private rxPaused = false;
  private isClosed = false;
  private closeEmitted = false;
  private closeTimer: NodeJS.Timeout | undefined;
  private readonly counters: BlipStats = {
    framesSent: 0, bytesSent: 0, framesReceived: 0, bytesReceived: 0, acksSent: 0, acksReceived: 0,
  };

  constructor(ws: WebSocket, opts: BlipConnectionOptions = {}) {
    super();
    this.ws = ws;
    this.maxMessageBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.role = opts.role ?? 'server';
    this.log = opts.log ?? (() => {});
    this.encoder = new FrameEncoder({ syncZlib: opts.syncZlib });
    this.decoder = new FrameDecoder({ syncZlib: opts.syncZlib });
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data: RawData, isBinary: boolean) => this.onWsMessage(data, isBinary));
    ws.on('close', (code: number, reason: Buffer) => this.onWsClose(code, reason.toString('utf8')));
    ws.on('error', (err: Error) => {
      this.log('warn', `BLIP: WebSocket error: ${err.message}`);
      this.emitError(err);
    });
  }

  /** Sets the handler for complete incoming requests (replaces any earlier one). */
  onRequest(handler: (req: BlipRequest) => void | Promise<void>): void {
    this.handler = handler;
  }

  sendRequest(properties: BlipProperties, body?: Buffer | string | object, opts: SendOptions = {}): Promise<BlipResponse | undefined> {
    if (this.isClosed) return Promise.reject(new Error('BLIP connection closed'));
    const data = encodeMessage(properties, bodyToBuffer(body));
    const number = ++this.lastOutgoingRequest;
    const noReply = opts.noReply === true;
    // Registered before queueing: a reply may start arriving before our last frame is sent.
    const reply = noReply
      ? Promise.resolve(undefined)
      : new Promise<BlipResponse>((resolve, reject) => this.pendingReplies.set(number, { resolve, reject }));
    this.queue({
      number, type: FrameType.MSG, urgent: opts.urgent === true, noReply, compressed: opts.compressed === true,
      data, offset: 0, bytesSent: 0, bytesAcked: 0,
    });
    return reply;
  }

  close(code = 1000, reason = ''): void {
    if (this.isClosed) return;
    this.shutDown(new Error(`BLIP connection closed (${code}${reason ? ` ${reason}` : ''})`));
    // A WebSocket close reason is at most 123 bytes.
    const why = Buffer.from(reason, 'utf8').subarray(0, 123).toString('utf8').replace(/\uFFFD$/, '');
    if (this.ws.readyState !== WS_OPEN && this.ws.readyState !== WS_CONNECTING) return;
    try {
      this.ws.close(code, why);
    } catch (err) {
      this.log('warn', `BLIP: closing WebSocket failed: ${(err as Error).message}`);
    }
    this.closeTimer = setTimeout(() => this.ws.terminate(), CLOSE_TIMEOUT_MS);
    this.closeTimer.unref();
  }

  get closed(): boolean { return this.isClosed; }

  /** Counters for diagnostics, metrics and tests. */
  get stats(): Readonly<BlipStats> { return { ...this.counters }; }

  // ---- sending ----

  private queue(msg: OutgoingMessage): void {
    this.outbox.add(msg);
    this.pump();
  }

  private sendReply(req: IncomingRequest, type: FrameType.RPY | FrameType.ERR, props: BlipProperties, body: Buffer, compressed: boolean): void {
    if (this.isClosed) return;
    // Responses copy the request's Urgent flag (LiteCore and go-blip both do).
    this.queue({
      number: req.number, type, urgent: req.urgent, noReply: false, compressed, data: encodeMessage(props, body),
      offset: 0, bytesSent: 0, bytesAcked: 0,
    });
  }

  private pump(): void {
    if (this.sending || this.isClosed) return;
    this.sending = true;
    this.sendLoop().catch((err: unknown) => this.fail(err));
  }

  /** The one sender: frames are encoded and written strictly in order (CRC and deflate state). */
  private async sendLoop(): Promise<void> {
    try {
      if (this.ws.readyState === WS_CONNECTING) {
        // A client socket may be wrapped before it opens; frames written now would be lost.
        await new Promise<void>((resolve) => { this.ws.once('open', resolve); this.ws.once('close', resolve); });
      }
      for (let next = this.outbox.next(); next && !this.isClosed; next = this.outbox.next()) {
        const { msg, frameData } = next;
        const end = Math.min(msg.offset + frameData, msg.data.length);
        const more = end < msg.data.length;
        const flags = msg.type | (msg.compressed ? FLAG_COMPRESSED : 0) | (msg.urgent ? FLAG_URGENT : 0)
          | (msg.noReply ? FLAG_NOREPLY : 0) | (more ? FLAG_MORECOMING : 0);
        const encoded = this.encoder.encodeFrame(msg.number, flags, msg.data.subarray(msg.offset, end));
        // Awaited only on the async zlib fallback: an await per frame would cost a microtask turn.
        const frame = encoded instanceof Promise ? await encoded : encoded;
        if (this.isClosed) return;
        msg.offset = end;
        msg.bytesSent += frame.length - decodeFrameHeader(frame).length;
        this.counters.framesSent++;
        this.counters.bytesSent += frame.length;
        const written = this.write(frame);
        this.outbox.afterFrame(msg);
        if (this.ws.bufferedAmount > WS_HIGH_WATER) await written;
      }
    } finally {
      // Cleared in the same tick the queue was found empty, so a message queued right after
      // this loop ends always starts a new one.
      this.sending = false;
    }
  }

  /** Writes one WebSocket message; the promise settles once it has been handed to the socket. */
  private write(frame: Buffer): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.ws.readyState !== WS_OPEN) { resolve(); return; }
      this.ws.send(frame, { binary: true }, () => resolve());
    });
  }

  // ---- receiving ----

  private onWsMessage(data: RawData, isBinary: boolean): void {
    if (this.isClosed) return;
    if (!isBinary) {
      this.fail(new BlipProtocolError('text WebSocket message', CLOSE_UNSUPPORTED_DATA));
      return;
    }
    const frame = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    this.counters.framesReceived++;
    this.counters.bytesReceived += frame.length;
    this.rxQueue.push(frame);
    if (this.rxQueue.length >= RX_QUEUE_PAUSE && !this.rxPaused) {
      this.rxPaused = true;
      this.ws.pause();
    }
    if (!this.rxBusy) this.drainRx();
  }

  /**
   * Handles queued frames strictly in order (CRC and inflate state). Runs synchronously; when a
   * frame's decode is asynchronous (zlib fallback) it stops and resumes once that frame is handled.
   */
  private drainRx(): void {
    this.rxBusy = true;
    try {
      while (this.rxQueue.length > 0 && !this.isClosed) {
        const decoded = this.decodeNext(this.rxQueue.shift()!);
        this.maybeResume();
        if (decoded instanceof Promise) {
          decoded
            .then((frame) => { if (!this.isClosed) this.onFrame(frame); })
            .catch((err: unknown) => this.fail(err))
            .finally(() => this.drainRx());
          return; // still busy: later frames wait for this one
        }
        this.onFrame(decoded);
      }
    } catch (err) {
      this.fail(err);
    }
    this.rxBusy = false;
  }

  private maybeResume(): void {
    if (this.rxPaused && this.rxQueue.length < RX_QUEUE_PAUSE / 4) {
      this.rxPaused = false;
      this.ws.resume();
    }
  }

  /** Decodes a frame against what is left of its message's size budget. */
  private decodeNext(raw: Buffer): DecodedFrame | Promise<DecodedFrame> {
    const header = decodeFrameHeader(raw);
    let partial: Partial | undefined;
    if (header.type === FrameType.MSG) partial = this.incomingRequests.get(header.number);
    else if (header.type === FrameType.RPY || header.type === FrameType.ERR) partial = this.pendingReplies.get(header.number)?.partial;
    return this.decoder.decodeFrame(raw, this.maxMessageBytes - (partial?.size ?? 0));
  }

  private onFrame(frame: DecodedFrame): void {
    if (frame.kind === 'ack') {
      this.counters.acksReceived++;
      if (this.outbox.ack(frame.type, frame.number, frame.bytesReceived)) this.pump();
      return;
    }
    if (frame.type === FrameType.MSG) this.onRequestFrame(frame);
    else this.onResponseFrame(frame);
  }

  private onRequestFrame(frame: DataFrame): void {
    let partial = this.incomingRequests.get(frame.number);
    if (!partial) {
      // LiteCore closes on any new request number other than last + 1 ("Bad incoming REQ").
      if (frame.number !== this.lastIncomingRequest + 1) {
        throw new BlipProtocolError(`request #${frame.number} out of order (expected #${this.lastIncomingRequest + 1})`);
      }
      this.lastIncomingRequest = frame.number;
      partial = newPartial(frame);
      this.incomingRequests.set(frame.number, partial);
    }
    this.append(partial, frame, FrameType.ACKMSG);
    if (frame.moreComing) return;
    this.incomingRequests.delete(frame.number);
    this.incompleteBytes -= partial.size;
    const { properties, body } = decodeMessage(Buffer.concat(partial.chunks, partial.size));
    this.log('debug', `BLIP ${this.role}: received MSG#${frame.number} ${properties.Profile ?? '?'} (${body.length} bytes)`);
    const req = new IncomingRequest(
      frame.number, partial.flags, partial.compressed, properties, body,
      (r, type, props, b, compressed) => this.sendReply(r, type, props, b, compressed),
      (msg) => this.log('warn', `BLIP: ${msg}`),
    );
    this.dispatch(req);
  }

  private onResponseFrame(frame: DataFrame): void {
    const pending = this.pendingReplies.get(frame.number);
    if (!pending) throw new BlipProtocolError(`response #${frame.number} to an unknown request`);
    pending.partial ??= newPartial(frame);
    const partial = pending.partial;
    this.append(partial, frame, FrameType.ACKRPY);
    if (frame.moreComing) return;
    this.pendingReplies.delete(frame.number);
    this.incompleteBytes -= partial.size;
    const { properties, body } = decodeMessage(Buffer.concat(partial.chunks, partial.size));
    this.log('debug', `BLIP ${this.role}: received ${partial.type === FrameType.ERR ? 'ERR' : 'RPY'}#${frame.number} (${body.length} bytes)`);
    pending.resolve(new IncomingResponse(frame.number, partial.type, partial.flags, partial.compressed, properties, body));
  }

  /** Adds a frame to its message, enforcing the size limit and acknowledging received bytes. */
  private append(partial: Partial, frame: DataFrame, ackType: FrameType.ACKMSG | FrameType.ACKRPY): void {
    partial.size += frame.data.length;
    if (partial.size > this.maxMessageBytes) throw new BlipProtocolError('message too big', CLOSE_MESSAGE_TOO_BIG);
    this.incompleteBytes += frame.data.length;
    if (this.incompleteBytes > INCOMPLETE_BYTES_FACTOR * this.maxMessageBytes) {
      throw new BlipProtocolError('too many bytes in incomplete messages', CLOSE_MESSAGE_TOO_BIG);
    }
    partial.chunks.push(frame.data);
    partial.compressed ||= frame.compressed;
    const before = partial.wireBytes;
    partial.wireBytes += frame.wireBytes;
    // go-blip's rule: ACK when the total crosses a multiple of 50,000, never on the last frame.
    if (frame.moreComing && Math.floor(before / ACK_INTERVAL) < Math.floor(partial.wireBytes / ACK_INTERVAL)) {
      this.counters.acksSent++;
      void this.write(encodeAckFrame(ackType, frame.number, partial.wireBytes));
    }
  }

  private dispatch(req: IncomingRequest): void {
    const handler = this.handler;
    if (!handler) {
      req.respondError('BLIP', 404, 'no handler for message');
      return;
    }
    const onError = (err: unknown): void => {
      const status = (err as { status?: unknown } | null)?.status;
      const code = typeof status === 'number' && Number.isInteger(status) ? status : 500;
      const message = code === 500 && typeof status !== 'number' ? 'Internal error' : (err as Error).message ?? '';
      if (code === 500) this.log('warn', `BLIP: handler for ${req.profile ?? '?'} failed: ${(err as Error)?.stack ?? String(err)}`);
      if (!req.noReply && !req.responded) req.respondError('HTTP', code, message);
    };
    try {
      const result = handler(req);
      if (result && typeof (result as Promise<void>).then === 'function') (result as Promise<void>).then(undefined, onError);
    } catch (err) {
      onError(err);
    }
  }

  // ---- errors and closing ----

  private fail(err: unknown): void {
    if (this.isClosed) return;
    const error = err instanceof Error ? err : new Error(String(err));
    // Our own failures (not the peer's fault) close with 1011 "internal error".
    const code = err instanceof BlipProtocolError ? err.closeCode : CLOSE_INTERNAL_ERROR;
    this.log('warn', `BLIP ${this.role}: closing connection: ${error.message}`);
    this.emitError(error);
    this.close(code, error.message);
  }

  private emitError(err: Error): void {
    // An 'error' event without a listener would throw; the close that follows is the signal then.
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  private shutDown(reason: Error): void {
    this.isClosed = true;
    this.outbox.clear();
    this.rxQueue.length = 0;
    this.incomingRequests.clear();
    const pending = [...this.pendingReplies.values()];
    this.pendingReplies.clear();
    for (const p of pending) p.reject(reason);
    this.encoder.close();
    this.decoder.close();
  }

  private onWsClose(code: number, reason: string): void {
    if (this.closeTimer) clearTimeout(this.closeTimer);
    if (!this.isClosed) this.shutDown(new Error(`BLIP connection closed by peer (${code}${reason ? ` ${reason}` : ''})`));
    if (this.closeEmitted) return;
    this.closeEmitted = true;
    this.emit('close', code, reason);
  }
}

function newPartial(frame: DataFrame): Partial {
  return { flags: frame.flags, type: frame.type, compressed: false, chunks: [], size: 0, wireBytes: 0 };
}

