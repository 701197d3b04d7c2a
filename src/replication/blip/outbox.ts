/**
 * Outgoing message scheduling and flow control (spec blip.md §2.4, §2.7).
 *
 * Round robin: after each frame a message with more data goes to the back of the queue, so large
 * messages are multiplexed frame by frame. Urgent messages are placed after the last urgent one
 * (leaving one normal message ahead when possible, as LiteCore does), but a new message never
 * overtakes a message that has not started, so messages *begin* in number order.
 *
 * Flow control: a message whose sent-but-unacknowledged bytes exceed 128,000 is parked until the
 * peer's ACK brings it back under (go-blip checks after each frame: `sent <= acked + 128000`).
 */
import { FrameType } from './codec/frame.ts';

export const MAX_UNACKED_BYTES = 128_000;
/** Frame data sizes: go-blip cuts 16384 − 10 / 4096 − 10 bytes of message data per frame. */
export const BIG_FRAME_DATA = 16_384 - 10;
export const SMALL_FRAME_DATA = 4_096 - 10;

export interface OutgoingMessage {
  number: number;
  type: FrameType.MSG | FrameType.RPY | FrameType.ERR;
  urgent: boolean;
  noReply: boolean;
  compressed: boolean;
  /** The whole encoded message (properties + body). */
  data: Buffer;
  /** How much of `data` has been framed. */
  offset: number;
  /** Wire bytes after the frame headers (payload + CRC), what the peer's ACK counts. */
  bytesSent: number;
  bytesAcked: number;
}

/** ACKMSG acknowledges our requests, ACKRPY our responses; the numbers are independent. */
function ackKey(type: FrameType, number: number): string {
  return `${type === FrameType.MSG || type === FrameType.ACKMSG ? 'M' : 'R'}${number}`;
}

export class Outbox {
  private queue: OutgoingMessage[] = [];
  /** Every unfinished message, queued or parked, so ACKs can find it. */
  private readonly active = new Map<string, OutgoingMessage>();
  private readonly parked = new Set<OutgoingMessage>();

  get size(): number { return this.queue.length; }
  get parkedCount(): number { return this.parked.size; }

  add(msg: OutgoingMessage): void {
    this.active.set(ackKey(msg.type, msg.number), msg);
    this.enqueue(msg, true);
  }

  /** Takes the next message to frame, with the frame data size to use for it. */
  next(): { msg: OutgoingMessage; frameData: number } | undefined {
    const msg = this.queue.shift();
    if (!msg) return undefined;
    // Small frames for a normal message while an urgent one waits, so the urgent one gets through.
    const urgentWaiting = this.queue.some((m) => m.urgent);
    return { msg, frameData: msg.urgent || !urgentWaiting ? BIG_FRAME_DATA : SMALL_FRAME_DATA };
  }

  /** Called after a frame of `msg` went out: requeue, park for an ACK, or retire it. */
  afterFrame(msg: OutgoingMessage): void {
    if (msg.offset >= msg.data.length) {
      this.active.delete(ackKey(msg.type, msg.number));
      return;
    }
    if (msg.bytesSent - msg.bytesAcked > MAX_UNACKED_BYTES) this.parked.add(msg);
    else this.enqueue(msg, false);
  }

  /** Applies a peer ACK; returns true when it un-parked a message (the sender should run). */
  ack(type: FrameType.ACKMSG | FrameType.ACKRPY, number: number, bytesReceived: number): boolean {
    const msg = this.active.get(ackKey(type, number));
    // Like LiteCore, ignore an ACK claiming more than we sent, and stale (smaller) ACKs.
    if (!msg || bytesReceived > msg.bytesSent || bytesReceived < msg.bytesAcked) return false;
    msg.bytesAcked = bytesReceived;
    if (this.parked.has(msg) && msg.bytesSent - msg.bytesAcked <= MAX_UNACKED_BYTES) {
      this.parked.delete(msg);
      this.enqueue(msg, false);
      return true;
    }
    return false;
  }

  clear(): void {
    this.queue = [];
    this.active.clear();
    this.parked.clear();
  }

  private enqueue(msg: OutgoingMessage, isNew: boolean): void {
    if (!msg.urgent || this.queue.length === 0) {
      this.queue.push(msg);
      return;
    }
    // Walk back from the end: stop after the last urgent message (skipping one normal message if
    // there is one behind it), or — for a new message — after any message not yet started.
    let index = this.queue.length;
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const m = this.queue[i];
      if (m.urgent) {
        index = i + 1 < this.queue.length ? i + 2 : i + 1;
        break;
      }
      if (isNew && m.offset === 0) {
        index = i + 1;
        break;
      }
      index = i === 0 ? Math.min(1, this.queue.length) : i;
    }
    this.queue.splice(index, 0, msg);
  }
}
