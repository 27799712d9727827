// The small network and polling helpers every test server needs: a free loopback port to start
// an engine on, polling until something is true (a daemon answers, a message arrives, a status
// is reached), and waiting until an SMTP server greets on a port.
import { createConnection, createServer } from 'node:net';

/**
 * Ports are handed out below the kernel's ephemeral range (32768–60999 on Linux). A port the
 * kernel chose for a listener and took back when it closed can at once become the local port of
 * any process's outgoing connection, and the engine or relay then started on it fails with
 * EADDRINUSE (CI failed so, once in several runs); a port below the range is never given to an
 * outgoing connection. Each vitest worker (VITEST_POOL_ID) takes its own stretch, so that two test
 * files running at once never pick the same port; within a stretch the ports go round from a
 * random start, each checked free before it is handed out.
 */
const FIRST_PORT = 12_000;
const STRETCH = 1_500;
const STRETCHES = 13; // 12,000 + 13 × 1,500 = 31,500: below 32,768
let nextInStretch = Math.floor(Math.random() * STRETCH);

/** A loopback port nobody listens on right now, outside the ephemeral range (see above). */
export async function freePort(): Promise<number> {
  const worker = Number(process.env.VITEST_POOL_ID ?? 0) % STRETCHES;
  const first = FIRST_PORT + worker * STRETCH;
  for (let tries = 0; tries < STRETCH; tries++) {
    const port = first + (nextInStretch++ % STRETCH);
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port in ${first}-${first + STRETCH - 1}`);
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export interface WaitOptions {
  /** Default 20 s. */
  timeoutMs?: number;
  /** Pause between probes; default 50 ms. */
  intervalMs?: number;
  /**
   * Asked before each probe: a reason why waiting is pointless (the process being waited for
   * has exited, with its output), so that the test fails at once with it, not at the timeout.
   */
  gone?: () => string | undefined;
}

/**
 * Polls `probe` until it returns a value other than undefined or false, and resolves with it.
 * An error thrown by the probe is not caught: a probe that can fail while the thing is not ready
 * yet (a refused connection) must turn that into false itself.
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, options: WaitOptions | number = {}): Promise<T> {
  const { timeoutMs = 20_000, intervalMs = 50, gone } = typeof options === 'number' ? { timeoutMs: options } : options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reason = gone?.();
    if (reason !== undefined) throw new Error(`stopped waiting for ${what}: ${reason}`);
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * Sends `request` to 127.0.0.1:`port` and resolves with all the server wrote until it closed the
 * connection ('' when refused). `halfClose` ends our side after the request, for servers that
 * read the request to its end before answering (spamd).
 */
export function tcpExchange(port: number, request: string, options: { halfClose?: boolean } = {}): Promise<string> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    socket.on('connect', () => (options.halfClose ? socket.end(request) : socket.write(request)));
    socket.on('data', (chunk: Buffer) => (reply += chunk.toString()));
    socket.on('error', () => resolve(''));
    socket.on('close', () => resolve(reply));
  });
}

/** Whether something on 127.0.0.1:`port` sends an SMTP 220 greeting (the session is then QUIT). */
export function greets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('data', (chunk: Buffer) => {
      socket.end('QUIT\r\n');
      resolve(chunk.toString('latin1').startsWith('220'));
    });
    socket.once('error', () => resolve(false));
    // Closed without a word (still starting up): not greeting yet.
    socket.once('close', () => resolve(false));
  });
}

/** Resolves once an SMTP server greets on `port` (`what` names it in the error). */
export async function waitForGreeting(what: string, port: number, options: WaitOptions = {}): Promise<void> {
  await waitFor(`${what} to greet on port ${port}`, () => greets(port), { timeoutMs: 10_000, ...options });
}
