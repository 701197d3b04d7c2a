import type http from 'node:http';

export type PostOutcome = { ok: true; status: number } | { ok: false; error: string; unreachable: boolean };

export function createAgent(url: string, maxSockets: number): http.Agent;
export function postJson(target: URL, agent: http.Agent, authorization: string | undefined, body: string, timeoutMs: number): Promise<PostOutcome>;
