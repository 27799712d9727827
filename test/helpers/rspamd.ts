// Starts rspamd for a test file with a private configuration: Debian's rules ($CONFDIR), one
// normal worker on a free loopback port, the network modules disabled (rbl, spf, dkim, dmarc,
// asn, fuzzy_check, arc...) and a short DNS timeout so it works offline. The compiled
// hyperscan cache is kept in a shared folder so only the first start compiles (~15 s).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnDaemon, type TestDaemon } from './clamd.js';
import { freePort, waitFor } from './net.js';

const OFFLINE_DISABLED = [
  'rbl', 'spf', 'dkim', 'dmarc', 'asn', 'fuzzy_check', 'arc', 'surbl', 'url_redirector', 'greylist',
  'ratelimit', 'replies', 'neural', 'reputation', 'history_redis', 'mx_check', 'dkim_signing', 'emails',
];

export async function startRspamd(): Promise<TestDaemon & { url: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-rspamd-'));
  const cache = join(tmpdir(), 'outpost-rspamd-hs-cache');
  mkdirSync(cache, { recursive: true });
  chmodSync(cache, 0o777);
  chmodSync(dir, 0o777);
  mkdirSync(join(dir, 'local.d'));
  for (const module of OFFLINE_DISABLED) writeFileSync(join(dir, 'local.d', `${module}.conf`), 'enabled = false;\n');
  writeFileSync(join(dir, 'local.d', 'options.inc'), `dns { timeout = 0.1s; retransmits = 1; }\nhs_cache_dir = "${cache}/";\n`);
  const port = await freePort();
  writeFileSync(
    join(dir, 'rspamd.conf'),
    [
      '.include "$CONFDIR/common.conf"',
      'options {',
      '  pidfile = "$RUNDIR/rspamd.pid";',
      '  .include "$CONFDIR/options.inc"',
      '  .include(try=true; priority=1,duplicate=merge) "$LOCAL_CONFDIR/local.d/options.inc"',
      '}',
      'logging { type = "console"; level = "error"; }',
      'worker "normal" {',
      `  bind_socket = "127.0.0.1:${port}";`,
      '  .include "$CONFDIR/worker-normal.inc"',
      '  count = 1;',
      '}',
      '',
    ].join('\n'),
  );
  const args = ['-f', '-c', join(dir, 'rspamd.conf'), '-u', 'nobody', '-g', 'nogroup'];
  for (const name of ['LOCAL_CONFDIR', 'DBDIR', 'RUNDIR', 'LOGDIR']) args.push('--var', `${name}=${dir}`);
  const daemon = spawnDaemon('rspamd', args, dir);
  const url = `http://127.0.0.1:${port}`;
  // Refused until the worker listens: not ready yet.
  const pong = async (): Promise<boolean> => (await fetch(`${url}/ping`).catch(() => undefined))?.ok ?? false;
  await waitFor('rspamd to answer /ping', pong, { timeoutMs: 90_000, intervalMs: 200, gone: daemon.exited });
  return {
    port,
    dir,
    url,
    stop: async () => {
      await daemon.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
