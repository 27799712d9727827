// The configuration: defaults with no config at all, the file, the OUTPOST_* environment
// variables (which win), and clear errors that name the field.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_RETRY_SCHEDULE, loadConfig } from '../../core/config.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'outpost-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('loadConfig', () => {
  it('starts with no configuration at all on the documented defaults', () => {
    const config = loadConfig({}, dir);
    expect(config.dataDir).toBe(join(dir, 'data'));
    expect(config.smtp).toMatchObject({ port: 2587, smtpsPort: 2465, bouncePort: 2525, maxRecipients: 100 });
    expect(config.http.port).toBe(8025);
    expect(config.delivery.relayHost).toBeUndefined();
    expect(config.dns.servers).toEqual([]);
    // The default retry schedule spans about three days, like Postfix and Haraka.
    const total = DEFAULT_RETRY_SCHEDULE.reduce((sum, seconds) => sum + seconds, 0);
    expect(total / 86_400).toBeGreaterThan(2.9);
    expect(total / 86_400).toBeLessThan(3.5);
    expect(config.delivery.retrySchedule).toEqual(DEFAULT_RETRY_SCHEDULE);
  });

  it('reads every documented OUTPOST_* variable', () => {
    const config = loadConfig(
      {
        OUTPOST_DATA_DIR: '/var/lib/outpost',
        OUTPOST_SMTP_PORT: '587',
        OUTPOST_SMTPS_PORT: '465',
        OUTPOST_BOUNCE_PORT: '25',
        OUTPOST_HTTP_PORT: '8080',
        OUTPOST_RELAY_HOST: 'smarthost.example:2525',
        OUTPOST_RETRY_SCHEDULE: '10, 20,30',
        OUTPOST_DNS_SERVERS: '127.0.0.1:5353,[::1]:53',
        OUTPOST_OPERATOR_TOKEN: 'a-long-operator-token-123',
        OUTPOST_HOSTNAME: 'relay.example',
        OUTPOST_DNSBL_ZONES: 'zen.example, bl.example',
      },
      dir,
    );
    expect(config).toMatchObject({
      dataDir: '/var/lib/outpost',
      hostname: 'relay.example',
      operatorToken: 'a-long-operator-token-123',
      smtp: { port: 587, smtpsPort: 465, bouncePort: 25 },
      http: { port: 8080 },
      delivery: { relayHost: 'smarthost.example:2525', retrySchedule: [10, 20, 30] },
      dns: { servers: ['127.0.0.1:5353', '[::1]:53'] },
      policy: { dnsblZones: ['zen.example', 'bl.example'] },
    });
  });

  it('reads the file named by OUTPOST_CONFIG, and the environment wins over it', async () => {
    const file = join(dir, 'custom.json');
    await writeFile(file, JSON.stringify({ hostname: 'from-file.example', smtp: { port: 1587, maxRecipients: 20 }, defaults: { mailsPerHour: 42 } }));
    const config = loadConfig({ OUTPOST_CONFIG: file, OUTPOST_SMTP_PORT: '2600' }, dir);
    expect(config.hostname).toBe('from-file.example');
    expect(config.smtp).toMatchObject({ port: 2600, maxRecipients: 20, smtpsPort: 2465 });
    expect(config.defaults).toEqual({ mailsPerHour: 42 });
  });

  it('refuses unknown keys, bad values and a missing file with errors that name the field', async () => {
    const file = join(dir, 'bad.json');
    await writeFile(file, JSON.stringify({ smtp: { prot: 25 } }));
    expect(() => loadConfig({ OUTPOST_CONFIG: file }, dir)).toThrow(/smtp: Unrecognized key.*prot/);
    expect(() => loadConfig({ OUTPOST_SMTP_PORT: 'twenty-five' }, dir)).toThrow(/OUTPOST_SMTP_PORT must be a whole number/);
    expect(() => loadConfig({ OUTPOST_RELAY_HOST: 'no-port' }, dir)).toThrow(/delivery\.relayHost: expected host:port/);
    expect(() => loadConfig({ OUTPOST_CONFIG: join(dir, 'missing.json') }, dir)).toThrow(ConfigError);
    await writeFile(file, '{ not json');
    expect(() => loadConfig({ OUTPOST_CONFIG: file }, dir)).toThrow(/is not valid JSON/);
    await writeFile(file, JSON.stringify({ defaults: { mailsPerHour: -1 } }));
    expect(() => loadConfig({ OUTPOST_CONFIG: file }, dir)).toThrow(/defaults\.mailsPerHour/);
  });
});
