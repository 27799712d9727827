// Admission on the bounce listener (port 2525 on the single node, 25 on AWS). It takes only
// bounces: a null sender, one recipient, addressed to a validly BATV-tagged address of a served
// domain. Everything else is refused with 550 5.7.1 and a named symbol, so that backscatter
// (bounces of mail we never sent, to forged senders) stops at the door.
import { batvSymbols, batvValidate, defaultBatvPolicy, type BatvKey, type BatvPolicy } from '../batv.js';
import { reject, type CheckResult } from '../checks/check.js';
import type { SettingOverrides } from '../settings.js';
import { effectiveUserSettings, type ConfigStore } from '../stores.js';

export interface BounceTenant {
  tenantId: string;
  /** The tenant's bounceValidation setting: when on, untagged bounces are refused. */
  bounceValidation: boolean;
}

export interface BounceRcptInput {
  /** Envelope sender as given; '' is the null sender. */
  mailFrom: string;
  rcptTo: string;
  /** Recipients already accepted in this transaction. */
  acceptedRcpts: string[];
  now: number;
  /** The tenant serving a domain, undefined when no tenant does. */
  tenantFor(domain: string): Promise<BounceTenant | undefined> | BounceTenant | undefined;
  /** The BATV keys in force (current and retired within grace). */
  batvKeys: readonly BatvKey[];
  batvPolicy?: BatvPolicy;
}

export const BOUNCE_SYMBOLS = {
  notNullSender: 'BOUNCE_NOT_NULL_SENDER',
  multipleRecipients: 'BOUNCE_MULTIPLE_RECIPIENTS',
  domainNotServed: 'BOUNCE_DOMAIN_NOT_SERVED',
  accepted: 'BOUNCE_ACCEPTED',
} as const;

const refuse = (text: string, name: string, evidence: Record<string, unknown>): CheckResult => reject(550, '5.7.1', text, [{ name, evidence }]);

const INVALID_TAG_TEXT = 'the BATV tag of this address is not one we made (forged, altered, moved to another address, or made with a retired key)';

const refusalText: Record<keyof typeof batvSymbols, string> = {
  untagged: 'this address takes bounces only to tagged (BATV) return paths, and this one carries no tag',
  malformed: 'the BATV tag of this address is malformed',
  // One text for both: telling "no such key" from "wrong hash" would help whoever guesses tags.
  'unknown-key': INVALID_TAG_TEXT,
  'bad-hash': INVALID_TAG_TEXT,
  expired: 'the BATV tag of this address has expired; we did not send this message recently',
  'too-far-in-future': 'the BATV tag of this address is dated too far in the future',
};

/**
 * Decides one RCPT TO on the bounce listener. Callouts (RCPT without DATA) get the same answer
 * as real bounces, so a verifying MTA learns exactly what a bounce would.
 */
export async function decideBounceRcpt(input: BounceRcptInput): Promise<CheckResult> {
  if (input.mailFrom !== '') {
    return refuse(`This server only accepts delivery status notifications (MAIL FROM:<>); send mail to <${input.rcptTo}> through its domain's MX`, BOUNCE_SYMBOLS.notNullSender, {
      mailFrom: input.mailFrom,
    });
  }
  if (input.acceptedRcpts.length > 0) {
    // A real bounce goes to one return path; a null-sender message to several is not one.
    return refuse('A bounce goes to exactly one return path; this message has more than one recipient', BOUNCE_SYMBOLS.multipleRecipients, {
      accepted: input.acceptedRcpts.length + 1,
    });
  }
  const verdict = batvValidate(input.rcptTo, input.batvKeys, input.now, input.batvPolicy ?? defaultBatvPolicy);
  const at = verdict.original.lastIndexOf('@');
  const domain = at > 0 ? verdict.original.slice(at + 1).toLowerCase().replace(/\.$/, '') : '';
  const tenant = domain ? await input.tenantFor(domain) : undefined;
  if (!tenant) {
    return refuse(`<${verdict.original}> is not in a domain served here; relaying is not allowed`, BOUNCE_SYMBOLS.domainNotServed, { domain });
  }
  if (verdict.reason === 'valid' || (verdict.reason === 'untagged' && !tenant.bounceValidation)) {
    return {
      action: 'accept',
      symbols: [{ name: BOUNCE_SYMBOLS.accepted, evidence: { batv: verdict.reason, tenantId: tenant.tenantId, original: verdict.original } }],
    };
  }
  return refuse(`Bounce refused: ${refusalText[verdict.reason]}`, batvSymbols[verdict.reason], {
    rcptTo: input.rcptTo,
    ...(verdict.keyIndex === undefined ? {} : { keyIndex: verdict.keyIndex }),
  });
}

/** At DATA: a second line of defence should the ingress have let several recipients through. */
export function decideBounceData(input: { mailFrom: string; rcptTo: string[] }): CheckResult {
  if (input.mailFrom !== '') return refuse('This server only accepts delivery status notifications (MAIL FROM:<>)', BOUNCE_SYMBOLS.notNullSender, { mailFrom: input.mailFrom });
  if (input.rcptTo.length !== 1) {
    return refuse('A bounce goes to exactly one return path; this message has more than one recipient', BOUNCE_SYMBOLS.multipleRecipients, { recipients: input.rcptTo.length });
  }
  return { action: 'accept', symbols: [] };
}

/**
 * `tenantFor` over the config store: the tenant serving a domain and its effective
 * bounceValidation (tenant setting ?? deployment default ?? built-in). Suspended tenants still
 * receive their bounces: their past mail keeps bouncing.
 */
export function bounceTenantsFrom(
  config: Pick<ConfigStore, 'getDomain' | 'getTenant'>,
  deploymentDefaults?: SettingOverrides,
): (domain: string) => Promise<BounceTenant | undefined> {
  return async (domain) => {
    const served = await config.getDomain(domain);
    if (!served) return undefined;
    const tenant = await config.getTenant(served.tenantId);
    if (!tenant) return undefined;
    return { tenantId: tenant.id, bounceValidation: effectiveUserSettings(undefined, tenant, deploymentDefaults).bounceValidation };
  };
}
