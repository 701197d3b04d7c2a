// The best-effort delivery thread (delivery-thread.ts starts it): the gateway's event loop only
// hands it JSON texts, and the HTTP work of one POST per event (request building, the write
// syscall, parsing the answer, the garbage it leaves) runs here, on another core.
//
// Messages in:  { hook: id, url, authorization, timeoutMs, maxSockets }   a webhook to post to
//               { close: id }                                            its connections go
//               { posts: [[requestId, hookId, body], ...] }              POST each, all at once
// Messages out: { done: [[requestId, outcome], ...] }  batched per turn of the loop, like the posts.
import { parentPort } from 'node:worker_threads';
import { createAgent, postJson } from './http-post.mjs';

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
      postJson(h.target, h.agent, h.authorization, body, h.timeoutMs).then((o) => finished(requestId, o));
    }
  } else if (m.hook !== undefined) {
    hooks.set(m.hook, { target: new URL(m.url), agent: createAgent(m.url, m.maxSockets), authorization: m.authorization, timeoutMs: m.timeoutMs });
  } else if (m.close !== undefined) {
    hooks.get(m.close)?.agent.destroy();
    hooks.delete(m.close);
  }
});
