/**
 * The metrics listener's routes: `GET /_metrics` and `GET /metrics` (Prometheus text; the second
 * is 3.x's spelling) and `GET /_expvar` (JSON). HEAD comes free from the router.
 *
 * Typed structurally (a context with `send` and `sendJson`) so this module imports nothing of ours,
 * as the layer table asks of observability; the result is assignable to `Route[]` from
 * `src/http/router.ts`.
 */
import type { Metrics } from './index.ts';

/** The part of `RequestContext` these handlers use. */
export interface MetricsResponder {
  send(status: number, body: string | Buffer, contentType: string): Promise<void>;
  sendJson(status: number, text: string): Promise<void>;
}

export interface MetricsRoute {
  methods: string[];
  pattern: string;
  handler: (ctx: MetricsResponder) => Promise<void>;
}

export function metricsRoutes(metrics: Metrics): MetricsRoute[] {
  const prometheus = async (ctx: MetricsResponder) => {
    await ctx.send(200, await metrics.prometheusText(), metrics.contentType);
  };
  const expvar = async (ctx: MetricsResponder) => {
    await ctx.sendJson(200, JSON.stringify(await metrics.expvar()));
  };
  return [
    { methods: ['GET'], pattern: '/_metrics', handler: prometheus },
    { methods: ['GET'], pattern: '/metrics', handler: prometheus },
    { methods: ['GET'], pattern: '/_expvar', handler: expvar },
  ];
}
