/**
 * Convergence: three gateways linked in a chain (0↔1↔2) and in a star (0↔1, 2↔1), each link a
 * continuous pushAndPull replicator owned by one end. Seeded random creates, edits and deletions
 * land on every gateway while links are cut (stopped) and restored at random; once every link is
 * back up, every gateway must hold the same winning revision of every document.
 *
 * Replay: SEED=<n> node --import tsx --test test/e2e/isgr-run-convergence.test.ts
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { seededRandom } from '../helpers/random.ts';
import type { ActiveReplicator } from '../../src/replication/isgr/types.ts';
import { eventually, replicator, req, startDbGateway, winners, type TestGateway } from './isgr-run-helpers.ts';

const SEED = Number(process.env.SEED ?? Math.floor(Math.random() * 2 ** 31));
const OPS = Number(process.env.ISGR_OPS ?? 150);
const IDS = 10;

async function edit(gw: TestGateway, id: string, kind: 'put' | 'delete', value: number): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const cur = await req(`${gw.adminUrl}/db/${id}`);
    const rev = cur.status === 200 ? cur.body._rev as string : undefined;
    if (kind === 'delete') {
      if (!rev) return;
      const r = await req(`${gw.adminUrl}/db/${id}?rev=${rev}`, { method: 'DELETE' });
      if (r.status === 200) return;
    } else {
      const r = await req(`${gw.adminUrl}/db/${id}`, { method: 'PUT', json: rev ? { _rev: rev, value } : { value } });
      if (r.status === 201) return;
    }
    // A replicated write landed between our read and our write: read again.
  }
}

interface Link { owner: number; peer: number; rep?: ActiveReplicator; up: boolean }

describe(`ISGR convergence on three gateways (SEED=${SEED})`, () => {
  const all: TestGateway[] = [];
  after(async () => { for (const g of all) await g.stop(); });

  for (const shape of ['chain', 'star'] as const) {
    test(`${shape}: random edits with links cut and restored end with the same winners everywhere`, async () => {
      console.log(`isgr convergence seed: SEED=${SEED} (${shape})`);
      const rnd = seededRandom(SEED + (shape === 'star' ? 1 : 0));
      const gws = [await startDbGateway(), await startDbGateway(), await startDbGateway()];
      all.push(...gws);
      const links: Link[] = shape === 'chain'
        ? [{ owner: 0, peer: 1, up: false }, { owner: 1, peer: 2, up: false }]
        : [{ owner: 0, peer: 1, up: false }, { owner: 2, peer: 1, up: false }];
      const logs: string[][] = [];
      const setLink = async (l: Link, up: boolean) => {
        if (up === l.up) return;
        l.up = up;
        if (up) {
          const r = replicator(gws[l.owner], {
            replication_id: `${shape}-${l.owner}-${l.peer}`, remote: `${gws[l.peer].adminUrl}/db`, direction: 'pushAndPull', continuous: true,
          });
          logs.push(r.logs);
          l.rep = r.rep;
          l.rep.start();
        } else {
          await l.rep!.stop();
        }
      };
      for (const l of links) await setLink(l, true);
      for (let op = 0; op < OPS; op++) {
        const x = rnd();
        if (x < 0.1) {
          const l = links[Math.floor(rnd() * links.length)];
          await setLink(l, !l.up);
          continue;
        }
        const gw = gws[Math.floor(rnd() * gws.length)];
        const id = `doc-${Math.floor(rnd() * IDS)}`;
        await edit(gw, id, x < 0.25 ? 'delete' : 'put', op);
        if (rnd() < 0.2) await new Promise((r) => setTimeout(r, Math.floor(rnd() * 30)));
      }
      for (const l of links) await setLink(l, true);
      let diff = '';
      const final = await eventually(async () => {
        const w = await Promise.all(gws.map((g) => winners(g)));
        const same = (m: Map<string, string>) => m.size === w[0].size && [...w[0]].every(([k, v]) => m.get(k) === v);
        const ids = new Set([...w[0].keys(), ...w[1].keys(), ...w[2].keys()]);
        diff = [...ids].filter((id) => !(w[0].get(id) === w[1].get(id) && w[1].get(id) === w[2].get(id)))
          .map((id) => `${id}: ${w.map((m) => m.get(id)).join(' | ')}`).join('\n');
        return w[0].size > 0 && same(w[1]) && same(w[2]) ? w[0] : undefined;
      }, `the three gateways to agree (SEED=${SEED})`, 60_000).catch(async (err: Error) => {
        const bad = diff.split('\n').map((l) => l.split(':')[0]).filter((x) => x);
        for (const id of bad.slice(0, 3)) {
          for (const [i, g] of gws.entries()) {
            const r = await req(`${g.adminUrl}/db/${id}?open_revs=all&revs=true`, { headers: { accept: 'application/json' } });
            const leaves = Array.isArray(r.body) ? r.body.map((x: any) => x.ok ? `${x.ok._rev}${x.ok._deleted ? ' del' : ''} <- ${(x.ok._revisions?.ids ?? []).slice(1, 4).map((d: string, k: number) => `${x.ok._revisions.start - 1 - k}-${d.slice(0, 6)}`).join(',')}` : JSON.stringify(x)) : r.text;
            diff += `\n  gw${i} ${id}: ${JSON.stringify(leaves)}`;
          }
        }
        for (const l of links) if (l.up) await l.rep!.stop();
        throw new Error(`${err.message}\ndiffering winners:\n${diff}\nlast logs:\n${logs.flat().filter((l) => !l.startsWith('debug')).slice(-20).join('\n')}`);
      });
      for (const l of links) {
        assert.notEqual(l.rep!.snapshot().state, 'error', l.rep!.snapshot().error_message);
        await setLink(l, false);
      }
      assert.ok(final.size > 0);
    });
  }
});
