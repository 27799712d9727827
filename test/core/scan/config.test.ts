// The scanning section of the configuration and its environment variables.
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../core/config.js';
import { enginesFromConfig } from '../../../adapters/scan/from-config.js';

describe('scanning configuration', () => {
  it('reads OUTPOST_CLAMD, OUTPOST_RSPAMD_URL and OUTPOST_SPAMD and builds those engines', () => {
    const config = loadConfig({ OUTPOST_CLAMD: '127.0.0.1:3310', OUTPOST_RSPAMD_URL: 'http://127.0.0.1:11333', OUTPOST_SPAMD: '127.0.0.1:783' }, '/nonexistent');
    expect(config.scanning).toMatchObject({ clamd: '127.0.0.1:3310', rspamdUrl: 'http://127.0.0.1:11333', spamd: '127.0.0.1:783' });
    const engines = enginesFromConfig(config.scanning);
    expect(engines.virusScanner?.name).toBe('clamd');
    expect(engines.spamEngine.name).toBe('rspamd');
  });

  it('falls back to the built-in rules and no virus scanner when nothing is configured', () => {
    const engines = enginesFromConfig(loadConfig({}, '/nonexistent').scanning);
    expect(engines.virusScanner).toBeUndefined();
    expect(engines.spamEngine.name).toBe('builtin');
  });

  it('refuses a spamd address that is not host:port', () => {
    expect(() => loadConfig({ OUTPOST_SPAMD: 'spamd' }, '/nonexistent')).toThrow(ConfigError);
  });
});
