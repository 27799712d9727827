// A bare smtp-server that accepts every message and drops it, in a process of its own: the floor
// of the SMTP library Outpost's ingress is built on (bench/ingress.ts's `smtp-server` server).
// Plain SMTP, no AUTH, the greeting sent at once (Outpost's smtp.greetingDelayMs 0, through the
// same patch); DATA is read to its end and answered 250. Prints `PORT <n>` once it listens.
//
//   node --import tsx bench/smtp-server-sink.ts
import { SMTPServer } from 'smtp-server';
import { setGreetingDelay } from '../smtp-ec2/smtp-server-patches.js';

const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS', 'AUTH'],
  logger: false,
  maxClients: 10_000,
  onData(stream, _session, callback) {
    stream.on('data', () => undefined);
    stream.on('end', () => callback());
  },
});
setGreetingDelay(server, 0);
server.on('error', (error) => process.stderr.write(`smtp-server sink: ${String(error)}\n`));
server.listen(0, '127.0.0.1', () => {
  const address = server.server.address();
  process.stdout.write(`PORT ${typeof address === 'object' && address ? address.port : 0}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
