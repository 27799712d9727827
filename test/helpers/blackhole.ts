// TCP listeners that accept connections and never say a word: an MX host that is up at the
// network level but never greets, which the delivery must give up on within its timeouts.
import { createServer, type Server, type Socket } from 'node:net';

export interface Blackhole {
  /** Connections accepted, by listening address. */
  connections: string[];
  open(): number;
  stop(): Promise<void>;
}

/** Listeners on `addresses`:`port` that accept connections and never say a word. */
export async function startBlackholes(addresses: string[], port: number): Promise<Blackhole> {
  const connections: string[] = [];
  const sockets = new Set<Socket>();
  const servers: Server[] = [];
  for (const address of addresses) {
    const server = createServer((socket) => {
      connections.push(address);
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => sockets.delete(socket));
    });
    server.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, address, () => resolve());
    });
    servers.push(server);
  }
  return {
    connections,
    open: () => sockets.size,
    async stop() {
      for (const socket of sockets) socket.destroy();
      await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    },
  };
}

