import { pathToFileURL } from 'node:url';

/** Runs a benchmark when its file is the program (`node --import tsx bench/x.ts`), not when imported by run.ts. */
export function runIfMain(moduleUrl: string, run: () => Promise<void>): void {
  if (moduleUrl !== pathToFileURL(process.argv[1] ?? '').href) return;
  run().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
