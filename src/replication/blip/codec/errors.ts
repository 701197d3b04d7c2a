/**
 * A violation of the BLIP protocol by the peer. The connection turns it into a WebSocket close with
 * `closeCode` (1002 protocol error, 1003 unsupported data, 1009 message too big) and the message as
 * the close reason; nothing outside that one connection is affected.
 */
export class BlipProtocolError extends Error {
  readonly closeCode: number;
  constructor(message: string, closeCode = 1002) {
    super(message);
    this.name = 'BlipProtocolError';
    this.closeCode = closeCode;
  }
}

export const CLOSE_PROTOCOL_ERROR = 1002;
export const CLOSE_UNSUPPORTED_DATA = 1003;
export const CLOSE_MESSAGE_TOO_BIG = 1009;
export const CLOSE_INTERNAL_ERROR = 1011;
