// Goal: 10,000 idle TLS sessions under 1 GiB of resident memory, and no growth of it over a long
// run of messages (100,000 in the goal; --messages sets it, smaller by default).
//
// Outpost runs as an operator runs it (`outpost start`, a child process whose RSS is read from
// /proc), with smtp.maxSessions raised and the loopback exempt from the per-address session cap.
// The child's file descriptor limit is raised to the hard limit (each session is a descriptor).
//   1. idle sessions: N TLS connections to the implicit-TLS port, each waits for the greeting and
//      then stays silent; RSS before and with all of them open;
//   2. messages: postfix's smtp-source sends M messages of 2 KB as an IP user in steps; RSS after
//      each step and once the pipeline has delivered everything to smtp-sink.
//
//   npx tsx bench/memory.ts [--sessions 10000] [--messages 5000]
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { parseArgs, promisify } from 'node:util';

process.env.OUTPOST_LOG_LEVEL ??= 'error';
const { openLocalStores } = await import('../bin/local-stores.js');
const { parseConfig } = await import('../core/config.js');
const { freePort } = await import('../test/helpers/net.js');
const { a, mx, startDnsServer } = await import('../test/helpers/dns-server.js');
const { line, mib, startCountingSink } = await import('./support.js');

const { values } = parseArgs({ options: { sessions: { type: 'string', default: '10000' }, messages: { type: 'string', default: '5000' } } });
const SESSIONS = Number(values.sessions);
const MESSAGES = Number(values.messages);
const STEP = Math.max(1, Math.min(1000, Math.ceil(MESSAGES / 10)));
const ROOT = join(import.meta.dirname, '..');

async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  return Number(kb ?? 0) * 1024;
}

/** Opens one TLS session and resolves once the greeting came; the socket then stays idle. */
function idleSession(port: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    socket.setTimeout(60_000);
    socket.once('timeout', () => socket.destroy(new Error('no greeting in 60 s')));
    socket.once('error', reject);
    socket.once('data', (chunk: Buffer) => {
      socket.setTimeout(0);
      if (chunk.toString('latin1').startsWith('220')) resolve(socket);
      else reject(new Error(`greeting: ${chunk.toString('latin1').trim()}`));
    });
  });
}

async function main(): Promise<void> {
  const sink = await startCountingSink();
  const dns = await startDnsServer({ 'acme.test': [a('127.0.0.1')], 'example.org': [mx(10, 'mx.example.org')], 'mx.example.org': [a('127.0.0.1')] });
  const dataDir = await mkdtemp(join(tmpdir(), 'outpost-bench-memory-'));
  const ports = { port: await freePort(), smtpsPort: await freePort(), bouncePort: await freePort(), http: await freePort() };
  const settings = {
    dataDir,
    hostname: 'relay.bench.test',
    listenAddress: '127.0.0.1',
    smtp: { port: ports.port, smtpsPort: ports.smtpsPort, bouncePort: ports.bouncePort, maxSessions: SESSIONS + 1000, sessionCapExemptions: ['127.0.0.1/32'] },
    http: { port: ports.http },
    // A long timeout: the loopback DNS server answers slowly when the machine is busy.
    dns: { servers: [dns.address], timeoutMs: 10_000 },
    delivery: { relayHost: `127.0.0.1:${sink.port}` },
    policy: { reputation: { throttleScore: 1e9, rejectScore: 1e9 } },
  };
  const configPath = join(dataDir, 'outpost.config.json');
  await writeFile(configPath, JSON.stringify(settings));
  const stores = openLocalStores(parseConfig(settings));
  const tenant = await stores.configStore.createTenant('bench', { mailsPerMinute: 0, mailsPerHour: 0, maxRecipientsPerDay: 0 });
  await stores.configStore.addDomain(tenant.id, 'acme.test');
  await stores.configStore.createUser({ tenantId: tenant.id, kind: 'ip', identity: '127.0.0.1/32', domain: null, passwordHash: null });
  stores.close();

  const hardLimit = execFileSync('sh', ['-c', 'ulimit -Hn']).toString().trim();
  const ownLimit = execFileSync('sh', ['-c', 'ulimit -n']).toString().trim();
  // The relay gets the hard limit of descriptors: each session holds one.
  const child = spawn('sh', ['-c', `ulimit -n ${hardLimit} && exec "${process.execPath}" bin/outpost.js start`], {
    cwd: ROOT,
    env: { ...process.env, OUTPOST_CONFIG: configPath, OUTPOST_LOG_LEVEL: 'error' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
  child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
  const deadline = Date.now() + 60_000;
  while (!output.includes('Outpost single node is running')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`outpost start did not come up: ${output}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const pid = child.pid ?? 0;
  const report: string[] = [`file descriptors: bench ${ownLimit}, relay raised to ${hardLimit}`];
  try {
    // 1. Idle TLS sessions.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const idleBefore = await rssOf(pid);
    const sockets: TLSSocket[] = [];
    let failed = 0;
    let firstError = '';
    const started = performance.now();
    for (let opened = 0; opened < SESSIONS; opened += 200) {
      const batch = await Promise.allSettled(Array.from({ length: Math.min(200, SESSIONS - opened) }, () => idleSession(ports.smtpsPort)));
      for (const result of batch) {
        if (result.status === 'fulfilled') sockets.push(result.value);
        else {
          failed += 1;
          firstError ||= result.reason instanceof Error ? result.reason.message : String(result.reason);
        }
      }
    }
    const openSeconds = (performance.now() - started) / 1000;
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const idleWith = await rssOf(pid);
    report.push(
      line('relay RSS at start', mib(idleBefore)),
      line(`relay RSS with ${sockets.length} idle TLS sessions`, `${mib(idleWith)} (${(((idleWith - idleBefore) / Math.max(1, sockets.length)) / 1024).toFixed(1)} KiB a session; opened in ${openSeconds.toFixed(0)} s)`),
      line('sessions refused or failed', `${failed}${firstError ? ` (first: ${firstError})` : ''}`),
      line('goal: 10,000 idle TLS sessions under 1 GiB', sockets.length >= 10_000 ? (idleWith < 2 ** 30 ? 'met' : 'not met') : `not measured at 10,000 (${sockets.length} sessions)`),
    );
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 3000));
    report.push(line('relay RSS after closing them', mib(await rssOf(pid))));

    // 2. A run of messages.
    const samples: Array<{ sent: number; rss: number }> = [];
    let shortSteps = 0;
    const before = sink.received();
    for (let sent = 0; sent < MESSAGES; sent += STEP) {
      const count = Math.min(STEP, MESSAGES - sent);
      // smtp-source stops at the first refusal (a 451 when the loopback DNS server is slow on a
      // busy machine): the step is counted short and the run goes on.
      await promisify(execFile)('/usr/sbin/smtp-source', ['-s', '20', '-m', String(count), '-l', '2048', '-f', 'alice@acme.test', '-t', 'rcpt@example.org', `127.0.0.1:${ports.port}`], { timeout: 1_800_000 }).catch(
        (error: unknown) => {
          shortSteps += 1;
          process.stdout.write(`step ending at ${sent + count} stopped early: ${error instanceof Error ? error.message.split('\n').at(-2) ?? error.message : String(error)}\n`);
        },
      );
      samples.push({ sent: sent + count, rss: await rssOf(pid) });
      process.stdout.write(`accepted ${sent + count}, delivered ${sink.received() - before}, relay RSS ${mib(samples.at(-1)?.rss ?? 0)}\n`);
    }
    if (shortSteps === 0) await sink.waitFor(before + MESSAGES, 3_600_000);
    else {
      // Fewer than M were accepted: wait until the pipeline has delivered what was.
      let last = -1;
      while (sink.received() !== last) {
        last = sink.received();
        await new Promise((resolve) => setTimeout(resolve, 10_000));
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const end = await rssOf(pid);
    const third = samples[Math.floor(samples.length / 3)] ?? samples[0];
    report.push(
      line(`relay RSS over ${MESSAGES} messages (accepted)`, samples.map((sample) => `${sample.sent}: ${mib(sample.rss)}`).join(', ')),
      line('relay RSS once all were delivered', `${mib(end)} (${sink.received() - before} delivered${shortSteps > 0 ? `; ${shortSteps} steps stopped early` : ''})`),
      line('growth from the first third to the end', third ? `${mib(end - third.rss)} (${(((end - third.rss) / Math.max(1, MESSAGES - third.sent)) * 1000 / 1024).toFixed(1)} KiB per 1,000 messages)` : 'n/a'),
    );
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    await sink.stop();
    await dns.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
  process.stdout.write(report.join('\n') + '\n');
}

await main();
