// A raw SMTP client over a socket (with STARTTLS), for tests that must control every byte:
// bare line endings, smuggling sequences, exact reply codes.
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

export class RawSmtp {
  private buffer = '';
  private waiters: Array<() => void> = [];
  private closedByPeer = false;
  private closeWaiters: Array<() => void> = [];

  private constructor(private socket: Socket | TLSSocket) {
    this.attach(socket);
  }

  /** `localAddress` picks the client's source address (any 127.0.0.x works on Linux loopback). */
  static async open(port: number, options: { tls?: boolean; localAddress?: string } = {}): Promise<{ client: RawSmtp; greeting: string }> {
    const tcp = netConnect({ port, host: '127.0.0.1', localAddress: options.localAddress });
    const socket = options.tls ? tlsConnect({ socket: tcp, rejectUnauthorized: false }) : tcp;
    await new Promise<void>((resolve, reject) => {
      socket.once(options.tls ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
    const client = new RawSmtp(socket);
    const greeting = await client.reply();
    return { client, greeting };
  }

  private attach(socket: Socket | TLSSocket): void {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      for (const waiter of this.waiters.splice(0)) waiter();
    });
    const peerClosed = (): void => {
      this.closedByPeer = true;
      for (const waiter of [...this.waiters.splice(0), ...this.closeWaiters.splice(0)]) waiter();
    };
    // 'end': the server sent FIN (it closed); 'close': the socket is gone.
    socket.on('end', peerClosed);
    socket.on('close', peerClosed);
  }

  /**
   * Whether the server closes the connection within `timeoutMs`: true only on a real end/close
   * event, so that a server that merely stays silent is not mistaken for one that hung up.
   */
  async closedByServer(timeoutMs = 2000): Promise<boolean> {
    if (this.closedByPeer) return true;
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(this.closedByPeer), timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Reads one complete (possibly multi-line) reply. */
  async reply(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = /^(?:\d{3}-[^\r\n]*\r\n)*\d{3}(?: [^\r\n]*)?\r\n/.exec(this.buffer);
      if (match) {
        this.buffer = this.buffer.slice(match[0].length);
        return match[0].trimEnd();
      }
      if (this.socket.destroyed || Date.now() > deadline) return `CLOSED ${this.buffer}`;
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  async command(line: string): Promise<string> {
    this.write(line + '\r\n');
    return this.reply();
  }

  async startTls(): Promise<string> {
    const answer = await this.command('STARTTLS');
    if (!answer.startsWith('220')) return answer;
    const secure = tlsConnect({ socket: this.socket, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.socket.removeAllListeners('data');
    this.socket = secure;
    this.attach(secure);
    return answer;
  }

  async authPlain(user: string, password: string): Promise<string> {
    return this.command(`AUTH PLAIN ${Buffer.from(`\0${user}\0${password}`).toString('base64')}`);
  }

  close(): void {
    this.socket.destroy();
  }
}
