/**
 * One ISGR node in its own process, for the PostgreSQL hand-over test (isgr-api-nodes.test.ts), so
 * that it can be SIGKILLed: a gateway with the test replicator factory and a short lease. Argument:
 * JSON `{databases, leaseMs}`. Prints `READY {"admin","node"}` once listening and `START <id>`
 * whenever one of its replicators starts.
 */
import { startIsgrGateway, TestFactory } from './isgr-api-support.ts';

class ReportingFactory extends TestFactory {
  override started(id: string): void {
    super.started(id);
    process.stdout.write(`START ${id}\n`);
  }
}

const { databases, leaseMs } = JSON.parse(process.argv[2]) as { databases: Record<string, Record<string, unknown>>; leaseMs: number };
const gw = await startIsgrGateway(databases, { leaseMs, factory: new ReportingFactory() });
process.stdout.write(`READY ${JSON.stringify({ admin: gw.adminUrl, node: gw.gateway.nodeId })}\n`);
process.on('SIGTERM', () => { void gw.stop().then(() => process.exit(0)); });
