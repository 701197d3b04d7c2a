/**
 * A delta that cannot be applied to its source (Fleece's `InvalidData`, LiteCore's `CorruptDelta`).
 * Pure code throws it; the BLIP push handler answers it with HTTP 422, as Sync Gateway does.
 */
export class DeltaError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'DeltaError';
  }
}
