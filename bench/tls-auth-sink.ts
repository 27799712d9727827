// A bare smtp-server with STARTTLS and AUTH, in a process of its own: bench/tls-auth.ts's
// baseline. It offers STARTTLS with the key and certificate it is given (Outpost's own), takes AUTH
// PLAIN or LOGIN for one login compared as plain text, reads DATA to its end, answers 250 and
// forgets the message. Prints `PORT <n>` once it listens.
//
//   node --import tsx bench/tls-auth-sink.ts KEY.pem CERT.pem LOGIN PASSWORD
import { readFileSync } from 'node:fs';
import { SMTPServer } from 'smtp-server';

const [keyFile, certFile, login, password] = process.argv.slice(2);
if (!keyFile || !certFile || !login || !password) throw new Error('usage: tls-auth-sink.ts KEY.pem CERT.pem LOGIN PASSWORD');

const server = new SMTPServer({
  key: readFileSync(keyFile),
  cert: readFileSync(certFile),
  authMethods: ['PLAIN', 'LOGIN'],
  disableReverseLookup: true,
  logger: false,
  closeTimeout: 100,
  onAuth(auth, _session, callback) {
    if (auth.username === login && auth.password === password) callback(null, { user: auth.username });
    else callback(new Error('Invalid username or password'));
  },
  onData(stream, _session, callback) {
    stream.on('data', () => undefined);
    stream.on('end', () => callback());
  },
});
server.on('error', (error) => process.stderr.write(`tls-auth sink: ${String(error)}\n`));
server.listen(0, '127.0.0.1', () => {
  const address = server.server.address();
  process.stdout.write(`PORT ${typeof address === 'object' && address ? address.port : 0}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
