// An embedded MQTT broker for the desktop: Aedes in-process on a free 127.0.0.1 port.
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Aedes } from 'aedes';

export interface EmbeddedBroker {
  host: string;
  port: number;
  /** Messages published through the broker, by topic prefix counting. */
  published: number;
  clients(): number;
  close(): Promise<void>;
}

export async function startEmbeddedBroker(port?: number): Promise<EmbeddedBroker> {
  const aedes = await Aedes.createBroker();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    aedes.handle(s);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port ?? 0, '127.0.0.1', () => resolve());
  });
  const b: EmbeddedBroker = {
    host: '127.0.0.1',
    port: (server.address() as AddressInfo).port,
    published: 0,
    clients: () => aedes.connectedClients,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => aedes.close(() => resolve()));
      }),
  };
  aedes.on('publish', (_packet, client) => {
    if (client) b.published++;
  });
  return b;
}
