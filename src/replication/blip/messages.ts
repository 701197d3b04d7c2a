/** Incoming message objects handed to handlers and to `sendRequest` callers. */
import { HttpError } from '../../errors.ts';
import { parseJsonBytes } from '../../json/index.ts';
import { FLAG_COMPRESSED, FLAG_NOREPLY, FLAG_URGENT, FrameType } from './codec/frame.ts';
import type { BlipMessageIn, BlipProperties, BlipRequest, BlipResponse } from './types.ts';

export class IncomingMessage implements BlipMessageIn {
  readonly noReply: boolean;
  readonly urgent: boolean;

  constructor(
    readonly number: number,
    flags: number,
    readonly compressed: boolean,
    readonly properties: BlipProperties,
    readonly body: Buffer,
  ) {
    this.noReply = (flags & FLAG_NOREPLY) !== 0;
    this.urgent = (flags & FLAG_URGENT) !== 0;
  }

  get profile(): string | undefined { return this.properties.Profile; }

  json<T = unknown>(): T {
    if (this.body.length === 0) return null as T;
    // The same parser as HTTP bodies: strict UTF-8 (no silent U+FFFD in stored text), the nesting
    // limit (deeper documents overflow the stack in later layers: a 500), number-preserving.
    try {
      return parseJsonBytes(this.body) as T;
    } catch (err) {
      throw new HttpError(400, `Invalid JSON in BLIP message body${err instanceof HttpError ? `: ${err.reason}` : ''}`);
    }
  }
}

export type ReplySender = (
  req: IncomingRequest, type: FrameType.RPY | FrameType.ERR, properties: BlipProperties, body: Buffer, compressed: boolean,
) => void;

export class IncomingRequest extends IncomingMessage implements BlipRequest {
  private replied = false;

  constructor(
    number: number, flags: number, compressed: boolean, properties: BlipProperties, body: Buffer,
    private readonly sendReply: ReplySender,
    private readonly warn: (msg: string) => void,
  ) {
    super(number, flags, compressed, properties, body);
  }

  get responded(): boolean { return this.replied; }

  respond(properties: BlipProperties = {}, body?: Buffer | string | object, opts: { compressed?: boolean } = {}): void {
    if (!this.claimReply()) return;
    this.sendReply(this, FrameType.RPY, properties, bodyToBuffer(body), opts.compressed === true);
  }

  respondError(domain: string, code: number, message = ''): void {
    if (!this.claimReply()) return;
    const props = { 'Error-Code': String(code), 'Error-Domain': domain };
    this.sendReply(this, FrameType.ERR, props, Buffer.from(message, 'utf8'), false);
  }

  /** A request is answered at most once and never when noReply (LiteCore treats either as fatal). */
  private claimReply(): boolean {
    if (this.noReply) {
      this.warn(`not replying to noreply request #${this.number} (${this.profile ?? '?'})`);
      return false;
    }
    if (this.replied) {
      this.warn(`request #${this.number} (${this.profile ?? '?'}) already answered`);
      return false;
    }
    this.replied = true;
    return true;
  }
}

export class IncomingResponse extends IncomingMessage implements BlipResponse {
  readonly isError: boolean;
  readonly errorDomain?: string;
  readonly errorCode?: number;

  constructor(number: number, type: FrameType, flags: number, compressed: boolean, properties: BlipProperties, body: Buffer) {
    super(number, flags, compressed, properties, body);
    this.isError = type === FrameType.ERR;
    if (this.isError) {
      this.errorDomain = properties['Error-Domain'] ?? 'BLIP';
      const code = Number.parseInt(properties['Error-Code'] ?? '', 10);
      this.errorCode = Number.isNaN(code) ? 0 : code;
    }
  }
}

/** Object bodies are JSON-encoded; strings are UTF-8; nothing is an empty body. */
export function bodyToBuffer(body: Buffer | string | object | undefined): Buffer {
  if (body === undefined) return Buffer.alloc(0);
  if (Buffer.isBuffer(body)) return body;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  return Buffer.from(JSON.stringify(body), 'utf8');
}

export function isCompressedFlag(flags: number): boolean {
  return (flags & FLAG_COMPRESSED) !== 0;
}
