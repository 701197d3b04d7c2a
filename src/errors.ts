/**
 * Errors are values with a status. Code below `http/` throws HttpError; the one
 * mapper in http/ turns it into Sync Gateway's {"error","reason"} body.
 */
const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'not_found',
  405: 'Method Not Allowed', 406: 'Not Acceptable', 409: 'conflict', 411: 'Length Required',
  412: 'Precondition Failed', 413: 'Request Entity Too Large', 415: 'Unsupported Media Type',
  416: 'Requested Range Not Satisfiable', 426: 'Upgrade Required', 429: 'Too Many Requests',
  500: 'Internal Server Error', 501: 'Not Implemented', 503: 'Service Unavailable',
};

/** CouchDB-style names used inside bulk responses (`base.CouchHTTPErrorName`). */
const COUCH_NAME: Record<number, string> = {
  400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 406: 'not_acceptable',
  409: 'conflict', 412: 'file_exists', 415: 'bad_content_type',
};

export class HttpError extends Error {
  readonly status: number;
  readonly error: string;
  /** A CouchDB name for an error Sync Gateway has no name of its own for (e.g. `missing_stub`). */
  private readonly couch?: string;
  constructor(status: number, reason: string, error?: string, couch?: string) {
    super(reason);
    this.status = status;
    this.error = error ?? STATUS_TEXT[status] ?? String(status);
    this.couch = couch;
  }
  get reason(): string { return this.message; }
  /** The error name as it appears in bulk rows (`_bulk_docs`, `_bulk_get`, `_all_docs`). */
  get couchName(): string { return this.couch ?? COUCH_NAME[this.status] ?? String(this.status); }
}

export function statusText(status: number): string {
  return STATUS_TEXT[status] ?? String(status);
}

/** Anything thrown becomes an HttpError; unknown errors are 500 with no detail leaked. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  return new HttpError(500, 'Internal error');
}
