// An unexpected exception in one session ends that session only: the client gets 421 4.3.0 and
// the connection closes, the failure is reported with the session id, and a second session open
// at the same time carries on. Both layers are tried on a real smtp-server: an exception thrown
// by one of our hooks (guardHooks), and one thrown anywhere in command handling (the command guard).
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { afterEach, describe, expect, it } from 'vitest';
import { guardHooks, onSessionFailure } from '../../smtp-ec2/session-guard.js';
import { RawSmtp } from '../helpers/smtp-client.js';

let server: SMTPServer | undefined;

afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

async function listen(created: SMTPServer): Promise<number> {
  server = created;
  created.on('error', () => undefined);
  return new Promise((resolve) => created.listen(0, '127.0.0.1', () => resolve((created.server.address() as { port: number }).port)));
}

const failing = (address: string): boolean => address.startsWith('boom@');

describe('an exception in one session', () => {
  it('thrown by a hook: that session gets 421 4.3.0 and closes; the failure names the session; another session goes on', async () => {
    const failures: Array<{ session?: string; where: string; error: string }> = [];
    const report = (error: unknown, session: SMTPServerSession | undefined, where: string): void => {
      failures.push({ session: session?.id, where, error: error instanceof Error ? error.message : String(error) });
    };
    const port = await listen(
      new SMTPServer(
        guardHooks(
          {
            authOptional: true,
            disabledCommands: ['STARTTLS', 'AUTH'],
            logger: false,
            onMailFrom(address, _session, callback) {
              if (failing(address.address)) throw new Error('a bug in a hook');
              callback();
            },
          },
          report,
        ),
      ),
    );
    const healthy = await RawSmtp.open(port);
    const broken = await RawSmtp.open(port);
    await healthy.client.command('EHLO a.test');
    await broken.client.command('EHLO b.test');
    expect(await broken.client.command('MAIL FROM:<boom@example.org>')).toMatch(/^421 4\.3\.0 /);
    expect(await broken.client.reply(2000)).toMatch(/^CLOSED/);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ where: 'onMailFrom', error: 'a bug in a hook' });
    expect(failures[0]?.session).toMatch(/\w+/);
    expect(await healthy.client.command('MAIL FROM:<fine@example.org>')).toMatch(/^250 /);
    healthy.client.close();
  });

  it('thrown anywhere in command handling (no hook guard): the command guard closes that session only', async () => {
    const failures: Array<{ session?: string; where: string }> = [];
    const created = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onRcptTo(address, _session, callback) {
        if (failing(address.address)) throw new Error('a bug below the hooks');
        callback();
      },
    });
    onSessionFailure(created, (_error, session, where) => failures.push({ session: session?.id, where }));
    const port = await listen(created);
    const healthy = await RawSmtp.open(port);
    const broken = await RawSmtp.open(port);
    await healthy.client.command('EHLO a.test');
    await broken.client.command('EHLO b.test');
    await broken.client.command('MAIL FROM:<x@example.org>');
    expect(await broken.client.command('RCPT TO:<boom@example.org>')).toMatch(/^421 4\.3\.0 /);
    expect(await broken.client.reply(2000)).toMatch(/^CLOSED/);
    expect(failures).toEqual([{ session: expect.stringMatching(/\w+/), where: 'command RCPT' }]);
    expect(await healthy.client.command('MAIL FROM:<fine@example.org>')).toMatch(/^250 /);
    expect(await healthy.client.command('RCPT TO:<fine@example.org>')).toMatch(/^250 /);
    healthy.client.close();
  });
});
