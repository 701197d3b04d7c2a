/**
 * Child process: one Syncgate gateway for a benchmark (see servers.ts). Reads its database config
 * from argv[2] (the whole config file's JSON), reports its addresses over IPC, exits cleanly on "stop" so that a
 * `--cpu-prof` profile is written.
 */
import { parseConfigText } from '../src/config/index.ts';
import { Gateway } from '../src/gateway.ts';
import { Logger } from '../src/log/index.ts';

const config = parseConfigText(process.argv[2] ?? '{}', 'bench');
const gateway = new Gateway(config, {
  logger: new Logger({ level: 'warn' }), interface: '127.0.0.1:0', adminInterface: '127.0.0.1:0', metricsInterface: '127.0.0.1:0',
});
const addrs = await gateway.start();
process.send!({ ready: true, public: addrs.public.port, admin: addrs.admin.port, metrics: addrs.metrics.port });
process.on('message', async (m: { stop?: boolean }) => {
  if (!m.stop) return;
  await gateway.stop();
  process.exit(0);
});
process.on('disconnect', () => process.exit(0));
