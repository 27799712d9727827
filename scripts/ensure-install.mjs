#!/usr/bin/env node
// Installs what `npm start` or `npm test` needs on a fresh Debian machine, and nothing twice.
// `node scripts/ensure-install.mjs start` — npm packages only.
// `node scripts/ensure-install.mjs test`  — npm packages plus the real peers the tests talk to
// (postfix's smtp-sink, swaks, clamd, spamd, rspamd, dkimpy, chromium), via apt-get when missing.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const mode = process.argv[2] ?? 'start';

function log(message) {
  process.stderr.write(`[ensure-install] ${message}\n`);
}

function npmPackagesPresent() {
  const marker = join(root, 'node_modules', '.package-lock.json');
  if (!existsSync(marker)) return false;
  // A lockfile newer than the installed tree means package.json changed since the last install.
  return statSync(marker).mtimeMs >= statSync(join(root, 'package-lock.json')).mtimeMs - 1000;
}

if (!npmPackagesPresent() || !existsSync(join(root, 'node_modules', 'better-sqlite3', 'build'))) {
  log('installing npm packages (npm ci)');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
}

// The control panel's static build (web/dist), served by the single node at /.
execFileSync(process.execPath, [join(root, 'scripts', 'build-web.mjs')], { cwd: root, stdio: 'inherit' });

if (mode !== 'test') process.exit(0);

/** Each Debian package with the probe that tells whether it is already usable. */
const debianPeers = [
  { pkg: 'postfix', present: () => existsSync('/usr/sbin/smtp-sink') },
  { pkg: 'swaks', present: () => existsSync('/usr/bin/swaks') },
  { pkg: 'clamav-daemon', present: () => existsSync('/usr/sbin/clamd') },
  { pkg: 'clamav', present: () => existsSync('/usr/bin/sigtool') },
  { pkg: 'spamd', present: () => existsSync('/usr/sbin/spamd') },
  { pkg: 'rspamd', present: () => existsSync('/usr/bin/rspamd') },
  { pkg: 'python3-dkim', present: () => spawnSync('/usr/bin/python3', ['-c', 'import dkim']).status === 0 },
  { pkg: 'chromium', present: () => existsSync('/usr/bin/chromium') },
  { pkg: 'zip', present: () => existsSync('/usr/bin/zip') },
];

const missing = debianPeers.filter((peer) => !peer.present()).map((peer) => peer.pkg);
if (missing.length > 0) {
  log(`installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const sudo = process.getuid?.() === 0 ? [] : ['sudo'];
  const run = (args, input) => {
    const [cmd, ...rest] = [...sudo, ...args];
    execFileSync(cmd, rest, { env, stdio: input ? ['pipe', 'inherit', 'inherit'] : 'inherit', input });
  };
  // postfix asks what kind of mail server this is; we only want its smtp-sink tool.
  run(['debconf-set-selections'], 'postfix postfix/main_mailer_type select No configuration\n');
  run(['apt-get', 'update', '-q']);
  run(['apt-get', 'install', '-y', '-q', '--no-install-recommends', ...missing]);
}
