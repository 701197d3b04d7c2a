/**
 * The operator console's static files at `/_admin/` (issue 19): admin port only (the route is
 * adminOnly, so the public router answers 404) and behind the admin port's operator
 * authentication like every admin route. The console is a client of the admin API; nothing here
 * serves data, only the bundle built by console/build.ts.
 */
import { readFile, stat } from 'node:fs/promises';
import { extname, resolve, sep } from 'node:path';
import { HttpError } from '../../errors.ts';
import type { RequestContext } from '../context.ts';
import type { Route } from '../router.ts';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
};

/**
 * No inline script or style element can run; the page talks only to its own origin (the admin
 * API); it cannot be framed. `img-src blob:` is for attachment previews fetched with credentials.
 */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
  + "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

async function serve(ctx: RequestContext, root: string, file: string): Promise<void> {
  // Segments arrive percent-decoded: refuse anything that could climb out of the bundle folder.
  if (file.split('/').some((s) => s === '' || s === '.' || s === '..' || s.includes('\\') || s.includes('\0'))) {
    throw new HttpError(404, 'missing');
  }
  const path = resolve(root, file);
  const type = TYPES[extname(path)];
  if (!path.startsWith(root.endsWith(sep) ? root : root + sep) || !type) throw new HttpError(404, 'missing');
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile()) throw new HttpError(404, 'missing');
  ctx.setHeader('Content-Security-Policy', CSP);
  ctx.setHeader('X-Content-Type-Options', 'nosniff');
  ctx.setHeader('X-Frame-Options', 'DENY');
  ctx.setHeader('Referrer-Policy', 'no-referrer');
  // Revalidated each time: the bundle changes with the installed version, under the same names.
  ctx.setHeader('Cache-Control', 'no-cache');
  await ctx.send(200, await readFile(path), type);
}

/**
 * `root` is the bundle folder; `unavailable` says why it cannot be served (no esbuild to build
 * it), answered as 503 rather than an empty page.
 */
export function consoleRoutes(root: string, unavailable?: () => string | undefined): Route[] {
  const handler = (file: (ctx: RequestContext) => string) => async (ctx: RequestContext) => {
    const why = unavailable?.();
    if (why) throw new HttpError(503, why);
    await serve(ctx, resolve(root), file(ctx));
  };
  return [
    {
      methods: ['GET'], pattern: '/_admin/', adminOnly: true,
      handler: async (ctx) => {
        // `/_admin` without the slash would resolve the page's relative URLs against `/`.
        if (!ctx.path.endsWith('/')) {
          ctx.setHeader('Location', '/_admin/');
          await ctx.send(301, '', 'text/plain');
          return;
        }
        await handler(() => 'index.html')(ctx);
      },
    },
    { methods: ['GET'], pattern: '/_admin/{file+}', handler: handler((ctx) => ctx.params.file), adminOnly: true },
  ];
}
