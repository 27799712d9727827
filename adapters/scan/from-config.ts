// Builds the scanning engines the configuration names: clamd when scanning.clamd is set; rspamd,
// else spamd, else the built-in rules. Print scanStartupWarnings() of the result at start.
import type { Config } from '../../core/config.js';
import { BuiltinSpamRules } from '../../core/scan/builtin-rules.js';
import type { SpamEngine, VirusScanner } from '../../core/scan/engines.js';
import { ClamdScanner, parseClamdAddress } from './clamd.js';
import { RspamdEngine } from './rspamd.js';
import { SpamdEngine } from './spamd.js';

export function enginesFromConfig(scanning: Config['scanning']): { virusScanner?: VirusScanner; spamEngine: SpamEngine } {
  const timeout = scanning.engineTimeoutMs;
  const spamEngine: SpamEngine = scanning.rspamdUrl
    ? new RspamdEngine(scanning.rspamdUrl, timeout)
    : scanning.spamd
      ? SpamdEngine.fromAddress(scanning.spamd, timeout)
      : new BuiltinSpamRules(scanning.builtinRules);
  return scanning.clamd ? { virusScanner: new ClamdScanner(parseClamdAddress(scanning.clamd), timeout), spamEngine } : { spamEngine };
}
