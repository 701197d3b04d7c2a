/** Public BLIP connection types (re-exported by connection.ts, which is the module to import). */
export interface BlipProperties { [key: string]: string }

export interface BlipMessageIn {
  /** Request number (for a response: the number of the request it answers). */
  number: number;
  properties: BlipProperties;
  body: Buffer;
  /** The body parsed as JSON; an empty body gives `null`; bad JSON throws HttpError(400). */
  json<T = unknown>(): T;
  noReply: boolean;
  /** True when any frame of the message arrived compressed. */
  compressed: boolean;
  urgent: boolean;
  /** The `Profile` property (the request type). */
  profile: string | undefined;
}

export interface BlipRequest extends BlipMessageIn {
  /** Sends the (single) reply. Ignored, with a warning, for noReply requests or a second reply. */
  respond(properties?: BlipProperties, body?: Buffer | string | object, opts?: { compressed?: boolean }): void;
  /** Sends an ERR reply with Error-Domain / Error-Code properties and the message as body. */
  respondError(domain: string, code: number, message?: string): void;
  /** True once respond/respondError was called. */
  readonly responded: boolean;
}

export interface BlipResponse extends BlipMessageIn {
  isError: boolean;
  errorDomain?: string;
  errorCode?: number;
}

export interface SendOptions { noReply?: boolean; compressed?: boolean; urgent?: boolean }

export type BlipLogger = (level: 'debug' | 'info' | 'warn', msg: string) => void;

export interface BlipConnectionOptions {
  /** Largest incoming message (properties + body, uncompressed) accepted; default 20 MiB. */
  maxMessageBytes?: number;
  role?: 'server' | 'client';
  log?: BlipLogger;
  /**
   * Deflate/inflate frames synchronously (default true, when this Node supports it; see
   * codec/compression.ts). false forces the asynchronous zlib path: for tests and comparisons.
   */
  syncZlib?: boolean;
}

export interface BlipStats {
  framesSent: number;
  /** Wire bytes of data frames passed to the WebSocket (headers included, ACKs excluded). */
  bytesSent: number;
  framesReceived: number;
  bytesReceived: number;
  acksSent: number;
  acksReceived: number;
}
