// A client that misbehaves on purpose: it writes any bytes at any moment, switches to TLS when
// told, and can end the connection with a TCP reset (RST, not FIN) at any stage. The reset goes
// out on the TCP socket under the TLS layer, as a client that crashes or a middlebox would do it.
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

export class RudeClient {
  private received = '';
  private closed = false;
  private top: Socket | TLSSocket;

  private constructor(readonly raw: Socket) {
    this.top = raw;
    raw.on('error', () => undefined);
    raw.on('close', () => (this.closed = true));
    this.listen(raw);
  }

  /** Connects (from `localAddress`, another 127.0.0.x, when given) without waiting for anything. */
  static connect(port: number, options: { localAddress?: string } = {}): Promise<RudeClient> {
    return new Promise((resolve, reject) => {
      const socket = netConnect({ port, host: '127.0.0.1', ...(options.localAddress ? { localAddress: options.localAddress } : {}) });
      socket.once('connect', () => resolve(new RudeClient(socket)));
      socket.once('error', reject);
    });
  }

  private listen(socket: Socket | TLSSocket): void {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (this.received += chunk));
  }

  /** Everything the server wrote so far (after TLS: what it wrote inside TLS). */
  get text(): string {
    return this.received;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  write(data: string | Buffer): void {
    if (!this.closed) this.top.write(data);
  }

  /** Waits until what the server wrote matches `pattern` (or the connection closes, or time runs out); returns all of it. */
  async until(pattern: RegExp, timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.received) && !this.closed && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    return this.received;
  }

  /** Waits until the server wrote more than `seen` characters (or closed, or time ran out). */
  async more(seen: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length <= seen && !this.closed && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  /** Waits until the server closes the connection; true if it did within the time. */
  async closedWithin(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    return this.closed;
  }

  /** Starts TLS on the connection (after the server's 220 to STARTTLS, or at once for implicit TLS) and waits for the handshake. */
  async tls(): Promise<void> {
    this.received = '';
    const secure = tlsConnect({ socket: this.raw, rejectUnauthorized: false });
    secure.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.top = secure;
    this.listen(secure);
  }

  /** Starts a TLS handshake and resets the TCP connection as soon as the server has answered the ClientHello. */
  async resetInTlsHandshake(): Promise<void> {
    await new Promise<void>((resolve) => {
      const secure = tlsConnect({ socket: this.raw, rejectUnauthorized: false });
      secure.on('error', () => undefined);
      // 'keylog' fires once the client has the server's key share: mid-handshake, before Finished.
      const stop = (): void => {
        this.reset();
        resolve();
      };
      secure.once('keylog', stop);
      setTimeout(stop, 1000);
    });
  }

  /** Ends the connection with a TCP RST. */
  reset(): void {
    if (!this.raw.destroyed) this.raw.resetAndDestroy();
    this.closed = true;
  }

  /** Ends the connection politely (FIN). */
  end(): void {
    this.top.end();
  }
}

/** A partial TLS ClientHello: a record header announcing more than is sent. */
export const PARTIAL_CLIENT_HELLO = Buffer.from('16030100c8010000c40303' + '00'.repeat(16), 'hex');

export const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
