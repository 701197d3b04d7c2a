// One webhook POST over node:http(s), for at-least-once delivery (webhook.ts), which posts one
// change (or one batch) at a time in sequence order. Best-effort POSTs go through the pipelining
// client in the delivery thread instead (pipelined-client.mjs).
import http from 'node:http';
import https from 'node:https';

import { UNREACHABLE } from './pipelined-client.mjs';

export function createAgent(url, maxSockets) {
  const Agent = new URL(url).protocol === 'https:' ? https.Agent : http.Agent;
  return new Agent({ keepAlive: true, maxSockets });
}

/**
 * POSTs `body` (JSON text) to `target` (a URL without credentials). Resolves with the status once
 * the answer is fully read (its body is discarded as it arrives, so a huge answer costs no memory),
 * never rejects; a receiver that never finishes answering is cut at `timeoutMs`.
 */
export function postJson(target, agent, authorization, body, timeoutMs) {
  const mod = target.protocol === 'https:' ? https : http;
  return new Promise((resolve) => {
    let settled = false;
    const done = (o) => { if (!settled) { settled = true; clearTimeout(timer); resolve(o); } };
    const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
    if (authorization) headers.authorization = authorization;
    const req = mod.request(target, { method: 'POST', headers, agent }, (res) => {
      res.on('data', () => {});
      res.on('end', () => done({ ok: true, status: res.statusCode ?? 0 }));
      res.on('error', (e) => done({ ok: false, error: e.message, unreachable: false }));
    });
    const timer = setTimeout(() => {
      done({ ok: false, error: `no complete answer within ${timeoutMs} ms`, unreachable: false });
      req.destroy();
    }, timeoutMs);
    req.on('error', (e) => done({ ok: false, error: e.message, unreachable: UNREACHABLE.has(e.code ?? '') }));
    req.end(body);
  });
}
