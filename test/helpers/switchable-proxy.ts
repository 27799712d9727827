// A TCP proxy on a fixed loopback port in front of a real engine (clamd, rspamd), that a test can
// switch off and on: while off, connections are reset at once (as when the engine is down);
// while on, bytes pass both ways unchanged. The relay keeps one address for the engine.
import { connect, createServer, type Socket } from 'node:net';

export interface SwitchableProxy {
  port: number;
  up: boolean;
  stop(): Promise<void>;
}

export async function startSwitchableProxy(targetPort: number): Promise<SwitchableProxy> {
  const sockets = new Set<Socket>();
  const proxy: SwitchableProxy = { port: 0, up: true, stop: async () => {} };
  const server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    if (!proxy.up) return void client.resetAndDestroy();
    const upstream = connect({ host: '127.0.0.1', port: targetPort });
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    client.pipe(upstream).pipe(client);
  });
  server.on('error', () => undefined);
  proxy.port = await new Promise<number>((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    });
  });
  proxy.stop = async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return proxy;
}
