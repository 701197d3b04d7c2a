// The best-effort delivery thread (delivery-thread.ts starts it): the gateway's event loop only
// hands it JSON texts, and the HTTP work of one POST per event runs here, on another core, through
// a pipelining client (pipelined-client.mjs) that writes the POSTs of one turn as one socket write.
//
// Messages in:  { hook: id, url, authorization, timeoutMs, maxSockets }   a webhook to post to
//               { close: id }                                            its connections go
//               { posts: [[requestId, hookId, body], ...] }              POST each, all at once
// Messages out: { done: [[requestId, outcome], ...] }  batched per turn of the loop, like the posts.
import { parentPort } from 'node:worker_threads';
import { PipelinedClient } from './pipelined-client.mjs';

const hooks = new Map();
let outgoing = [];

function finished(requestId, outcome) {
  if (outgoing.length === 0) setImmediate(flush);
  outgoing.push([requestId, outcome]);
}

function flush() {
  const done = outgoing;
  outgoing = [];
  parentPort.postMessage({ done });
}

parentPort.on('message', (m) => {
  if (m.posts) {
    for (const [requestId, hookId, body] of m.posts) {
      const h = hooks.get(hookId);
      if (!h) { finished(requestId, { ok: false, error: 'webhook closed', unreachable: false }); continue; }
      h.post(body, (o) => finished(requestId, o));
    }
  } else if (m.hook !== undefined) {
    hooks.set(m.hook, new PipelinedClient(new URL(m.url), m.authorization, m.timeoutMs, m.maxSockets));
  } else if (m.close !== undefined) {
    hooks.get(m.close)?.close();
    hooks.delete(m.close);
  }
});
