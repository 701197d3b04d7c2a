import type { PostOutcome } from './http-post.mjs';

export declare const UNREACHABLE: Set<string>;

export declare class PipelinedClient {
  constructor(target: URL, authorization: string | undefined, timeoutMs: number, maxSockets: number, depth?: number);
  /** 'probe' until the first answer says whether the receiver keeps connections. */
  readonly mode: 'probe' | 'pipeline' | 'single';
  post(body: string, done: (outcome: PostOutcome) => void): void;
  close(): void;
}
