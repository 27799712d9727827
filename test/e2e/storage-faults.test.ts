// Storage failing while a message is stored: the client never gets 250 for a message that is not
// durably stored. A full disk (the message file on a real, small tmpfs; the database at its page
// limit) answers 452 4.3.1; a database that stays locked answers 451 4.3.0. Nothing is queued,
// no message file is left behind, and once the fault is gone the same client is served again.
import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startDnsServer } from '../helpers/dns-server.js';
import { messageWithStatus, parseReply, rawMessage, rawSession, rawTransaction, startE2eNode, testZone, type E2eNode } from '../helpers/e2e-node.js';
import { outpost, relayEnv, relayPorts, startRelay } from '../helpers/relay-process.js';
import { startSmtpSink } from '../helpers/smtp-sink.js';
import { waitFor } from '../helpers/net.js';

const PASSWORD = 'a good long password';
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A message of about `bytes` bytes (lines of 76 characters). */
function bigMessage(subject: string, bytes: number): string {
  const line = 'x'.repeat(76);
  return rawMessage('alice@acme.test', 'bob@example.org', subject, [], Array.from({ length: Math.ceil(bytes / 78) }, () => line).join('\r\n'));
}

async function sendAs(port: number, message: string, password?: string): Promise<string> {
  const { smtp, auth } = await rawSession(port, 'alice@acme.test', password);
  if (!auth?.startsWith('235')) throw new Error(`AUTH refused: ${auth}`);
  try {
    const reply = await rawTransaction(smtp, { mailFrom: 'alice@acme.test', rcptTo: ['bob@example.org'], message });
    return reply.end ?? reply.data ?? reply.mail;
  } finally {
    smtp.close();
  }
}

function filesUnder(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile()).map((entry) => entry.name);
  } catch {
    return [];
  }
}

async function nodeWithAlice(dataDir?: string): Promise<E2eNode> {
  const node = await startE2eNode(dataDir ? { config: { dataDir } } : {});
  const tenant = await node.tenant('acme', ['acme.test']);
  await node.user(tenant, 'alice@acme.test');
  return node;
}

/** The single node with its data folder on a real 4 MB tmpfs, unmounted after the test. */
async function nodeOnSmallDisk(): Promise<{ mount: string; node: E2eNode }> {
  const mount = mkdtempSync(join(tmpdir(), 'outpost-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mount]);
  cleanups.push(() => {
    execFileSync('umount', ['-l', mount]);
    rmSync(mount, { recursive: true, force: true });
  });
  const node = await nodeWithAlice(join(mount, 'data'));
  cleanups.push(() => node.stop());
  return { mount, node };
}

function bytesFree(mount: string): number {
  const stats = statfsSync(mount);
  return stats.bavail * stats.bsize;
}

describe('storage faults while a message is stored', () => {
  it('answers 452 4.3.1 when the disk is full (a real 4 MB tmpfs), keeps nothing, and accepts again once space is free', async () => {
    const { mount, node } = await nodeOnSmallDisk();
    const port = node.node.ports.submission;
    // Fill the disk but for about 100 kB; the message is 600 kB.
    const filler = join(mount, 'filler');
    const free = (): number => bytesFree(mount);
    writeFileSync(filler, Buffer.alloc(Math.max(0, free() - 100_000)));

    const reply = await sendAs(port, bigMessage('disk full', 600_000));
    expect(reply).toMatch(/^452 4\.3\.1 /);
    expect(await node.node.stores.queue.depth('scan')).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
    expect(filesUnder(join(mount, 'data', 'blobs'))).toEqual([]);

    rmSync(filler);
    const accepted = await sendAs(port, bigMessage('space again', 600_000));
    expect(accepted).toMatch(/^250 2\.0\.0 Ok: queued as /);
    await messageWithStatus(node.node, parseReply(accepted).text.split(' ').at(-1) ?? '', 'delivered');
  }, 60_000);

  it('answers 452 4.3.1 when the disk is full under the database (SQLITE_FULL: small messages go into it), and accepts again once space is free', async () => {
    const { mount, node } = await nodeOnSmallDisk();
    const port = node.node.ports.submission;
    const { smtp, auth } = await rawSession(port, 'alice@acme.test');
    expect(auth).toMatch(/^235 /);
    // Not a byte left: the database (and its write-ahead log) cannot grow.
    const filler = join(mount, 'filler');
    const free = (): number => bytesFree(mount);
    writeFileSync(filler, Buffer.alloc(free()));

    // The log's free space and the database's free pages may still take a few: send until one
    // step that must write (the counters at RCPT, the commit at the end of DATA) is refused.
    const accepted: string[] = [];
    let refusal: string | undefined;
    for (let i = 0; i < 400 && !refusal; i += 1) {
      const reply = await rawTransaction(smtp, { mailFrom: 'alice@acme.test', rcptTo: ['bob@example.org'], message: rawMessage('alice@acme.test', 'bob@example.org', `disk full ${i}`) });
      const replies = [reply.mail, ...reply.rcpt, reply.data, reply.end].filter((line): line is string => typeof line === 'string');
      refusal = replies.find((line) => !/^[23]/.test(line));
      if (!refusal && reply.end) accepted.push(parseReply(reply.end).text.split(' ').at(-1) ?? '');
    }
    smtp.close();
    expect(refusal).toMatch(/^452 4\.3\.1 /);
    // Every 250 was for a message that is really stored.
    for (const id of accepted) expect(await node.node.stores.log.get(id), id).toBeDefined();

    rmSync(filler);
    const again = await sendAs(port, rawMessage('alice@acme.test', 'bob@example.org', 'space again'));
    expect(again).toMatch(/^250 2\.0\.0 Ok: queued as /);
    await messageWithStatus(node.node, parseReply(again).text.split(' ').at(-1) ?? '', 'delivered');
  }, 90_000);

  it('answers 451 4.3.0 while another process holds the database write lock beyond the busy timeout (real relay process)', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'outpost-busy-'));
    const sink = await startSmtpSink();
    const dns = await startDnsServer(testZone());
    const ports = { ...(await relayPorts()), dns: dns.address };
    const env = relayEnv(dataDir, ports, { OUTPOST_RELAY_HOST: `127.0.0.1:${sink.port}` });
    await outpost(env, ['tenant', 'add', 'acme']);
    await outpost(env, ['domain', 'add', '--tenant', 'acme', 'acme.test']);
    await outpost(env, ['user', 'add', '--tenant', 'acme', 'alice@acme.test', '--password-stdin'], PASSWORD + '\n');
    const relay = await startRelay(env);
    cleanups.push(async () => {
      relay.child.kill('SIGKILL');
      await relay.exited;
      await sink.stop();
      await dns.stop();
      await rm(dataDir, { recursive: true, force: true });
    });
    // Warm up: one message through, so the session and queue code paths are loaded.
    expect(await sendAs(ports.submission, rawMessage('alice@acme.test', 'bob@example.org', 'before the lock'), PASSWORD)).toMatch(/^250 /);

    // The lock is taken once the client is in DATA, so the message itself meets the locked database.
    const { smtp, auth } = await rawSession(ports.submission, 'alice@acme.test', PASSWORD);
    expect(auth).toMatch(/^235 /);
    expect(await smtp.command('MAIL FROM:<alice@acme.test>')).toMatch(/^250 /);
    expect(await smtp.command('RCPT TO:<bob@example.org>')).toMatch(/^250 /);
    expect(await smtp.command('DATA')).toMatch(/^354 /);
    const holder = new Database(join(dataDir, 'outpost.db'));
    holder.exec('BEGIN IMMEDIATE');
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      holder.exec('ROLLBACK');
      holder.close();
    };
    cleanups.push(release);
    smtp.write(rawMessage('alice@acme.test', 'bob@example.org', 'database locked'));
    // better-sqlite3 waits synchronously (busy_timeout, 5 s) for each statement that meets the lock.
    const reply = await smtp.reply(90_000);
    smtp.close();
    release();
    expect(reply).toMatch(/^451 4\.3\.0 /);
    expect(relay.child.exitCode).toBeNull();
    expect(relay.output()).toMatch(/SQLITE_BUSY|database is locked/);

    expect(await sendAs(ports.submission, rawMessage('alice@acme.test', 'bob@example.org', 'after the lock'), PASSWORD)).toMatch(/^250 /);
    const subjects = async (): Promise<string[]> => (await sink.waitForMessages(2, 20_000)).map((m) => /Subject: (.*)/.exec(m.data.toString())?.[1] ?? '');
    expect((await subjects()).sort()).toEqual(['after the lock', 'before the lock']);
    expect((await sink.messages()).length).toBe(2);
  }, 120_000);
});
