// Aedes in its own process for tools/fleet (the fallback when mosquitto is not installed), so the
// broker's CPU does not run on the same event loop as the 1000 clients being timed.
//
//   node --import tsx tools/fleet/aedes-child.ts <port>      (0 = a free port)
//
// Listens on 127.0.0.1 only, prints one line `listening <port>` on stdout once it accepts
// connections, and runs until killed (the fleet tool SIGKILLs it to crash the broker). It also exits
// when its parent goes away (stdin closes), so it can never outlive the tool.

import net from 'node:net';
import { Aedes } from 'aedes';

async function main(): Promise<void> {
  const arg = process.argv[2] ?? '0';
  const port = Number(arg);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write('aedes-child: bad port ' + JSON.stringify(arg) + '\n');
    process.exit(2);
  }
  const broker = await Aedes.createBroker({});
  // 'error' is missing from aedes' typed events but aedes.js emits it; keep it from crashing us.
  (broker as unknown as NodeJS.EventEmitter).on('error', () => {});
  const server = net.createServer((sock) => {
    sock.on('error', () => {});
    broker.handle(sock);
  });
  server.maxConnections = 100000;
  server.on('error', (err) => {
    process.stderr.write('aedes-child: ' + err.message + '\n');
    process.exit(1);
  });
  server.listen({ port, host: '127.0.0.1' }, () => {
    const a = server.address() as net.AddressInfo;
    process.stdout.write('listening ' + a.port + '\n');
  });
  // The parent holds our stdin: when it dies, so do we.
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}

main().catch((err) => {
  process.stderr.write('aedes-child: ' + (err instanceof Error ? err.message : String(err)) + '\n');
  process.exit(1);
});
