// A TCP proxy on a free loopback port in front of a real SMTP server (smtp-sink) that counts the
// connections made through it and the most open at once, and can break the open ones the way a
// receiver that restarted or a NAT that forgot them does: the next bytes a client sends over a
// broken connection get a reset.
import { connect, createServer, type Socket } from 'node:net';

export interface CountingProxy {
  port: number;
  /** Connections accepted since start. */
  readonly connections: number;
  /** Most connections open at the same time. */
  readonly peak: number;
  /** Connections open now. */
  readonly open: number;
  /** Breaks every open connection: silent until the client writes, then reset. */
  breakOpen(): void;
  stop(): Promise<void>;
}

export async function startCountingProxy(targetPort: number): Promise<CountingProxy> {
  const clients = new Set<Socket>();
  const broken = new WeakSet<Socket>();
  let connections = 0;
  let peak = 0;
  const server = createServer((client) => {
    connections += 1;
    clients.add(client);
    peak = Math.max(peak, clients.size);
    client.on('error', () => undefined);
    const upstream = connect({ host: '127.0.0.1', port: targetPort });
    upstream.on('error', () => client.destroy());
    client.on('close', () => {
      clients.delete(client);
      upstream.destroy();
    });
    upstream.on('close', () => client.destroy());
    upstream.on('data', (chunk: Buffer) => {
      if (!broken.has(client)) client.write(chunk);
    });
    client.on('data', (chunk: Buffer) => {
      if (broken.has(client)) return void client.resetAndDestroy();
      upstream.write(chunk);
    });
  });
  server.on('error', () => undefined);
  const port = await new Promise<number>((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    });
  });
  return {
    port,
    get connections() {
      return connections;
    },
    get peak() {
      return peak;
    },
    get open() {
      return clients.size;
    },
    breakOpen() {
      for (const client of clients) broken.add(client);
    },
    async stop() {
      for (const client of clients) client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
