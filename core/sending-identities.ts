// Keeps the sending provider's identities (SES, core/ports/email-identities.ts) in step with the
// domains Outpost verified: a domain is registered when it becomes verified, its DKIM key follows
// key changes, and it is removed when it leaves its tenant. The provider signs with the domain's
// Outpost key, so it needs an RSA key (SES takes no Ed25519): the default key when it is RSA,
// else the newest RSA key. A provider failure never undoes Outpost's own verification: it is
// logged and shown next to the domain, and the next verify call or key change registers again.
import type { DkimKeyStore, DkimSigningKey } from './dkim/keys.js';
import { errorMessage } from './log.js';
import type { EmailIdentities, SendingIdentityState } from './ports/email-identities.js';
import type { Logger } from './ports.js';

export interface SendingIdentityDeps {
  identities: EmailIdentities;
  dkimKeys?: DkimKeyStore;
  logger?: Logger;
}

/** What the API shows next to Outpost's own state of a domain. */
export interface SendingIdentityView extends Omit<SendingIdentityState, 'status'> {
  provider: EmailIdentities['provider'];
  /** `unknown`: the provider did not answer. */
  status: SendingIdentityState['status'] | 'unknown';
  /** What to do about a domain the provider does not send from yet; null when nothing. */
  detail: string | null;
}

/** The key the provider signs with: the domain's default when RSA, else its newest RSA key. */
export async function providerSigningKey(dkimKeys: DkimKeyStore, domain: string): Promise<DkimSigningKey | undefined> {
  const rsa = (await dkimKeys.list(domain)).filter((key) => key.algorithm === 'rsa');
  rsa.sort((a, b) => Number(b.isDefault) - Number(a.isDefault) || b.createdAt - a.createdAt);
  const chosen = rsa[0];
  return chosen ? dkimKeys.signingKey(domain, chosen.selector) : undefined;
}

/** Registers a verified domain with the provider (or points it at the current key); never throws. */
export async function registerSendingIdentity(deps: SendingIdentityDeps, domain: string): Promise<void> {
  const { identities, logger } = deps;
  const key = deps.dkimKeys ? await providerSigningKey(deps.dkimKeys, domain) : undefined;
  if (!key) {
    logger?.info('sending identity not registered: the domain has no RSA DKIM key yet', { domain, provider: identities.provider });
    return;
  }
  try {
    await identities.register(domain, key);
    logger?.info('sending identity registered', { domain, provider: identities.provider, selector: key.selector });
  } catch (error: unknown) {
    logger?.error('sending identity registration failed; the next verify call or DKIM key change tries again', { domain, provider: identities.provider, error: errorMessage(error) });
  }
}

/** Removes the domain's identity at the provider (the domain left its tenant); never throws. */
export async function removeSendingIdentity(deps: SendingIdentityDeps, domain: string): Promise<void> {
  try {
    await deps.identities.remove(domain);
    deps.logger?.info('sending identity removed', { domain, provider: deps.identities.provider });
  } catch (error: unknown) {
    deps.logger?.error('sending identity removal failed; remove it at the provider by hand', { domain, provider: deps.identities.provider, error: errorMessage(error) });
  }
}

const NOTHING_YET = { sendingEnabled: false, dkim: { status: null, selector: null, outpostKey: false } } as const;

/** A domain Outpost has not verified: the provider hears of it only once it is. */
export function unverifiedSendingIdentity(identities: EmailIdentities): SendingIdentityView {
  return { provider: identities.provider, status: 'not-registered', ...NOTHING_YET, dkim: { ...NOTHING_YET.dkim }, detail: 'registered once the domain is verified' };
}

/** The provider's state of a verified domain, with what to do when it does not send from it yet. */
export async function sendingIdentityView(deps: SendingIdentityDeps, domain: string): Promise<SendingIdentityView> {
  const provider = deps.identities.provider;
  let state: SendingIdentityState;
  try {
    state = await deps.identities.state(domain);
  } catch (error: unknown) {
    deps.logger?.warn('sending identity state unavailable', { domain, provider, error: errorMessage(error) });
    return { provider, status: 'unknown', ...NOTHING_YET, dkim: { ...NOTHING_YET.dkim }, detail: `${provider} did not answer; try again later` };
  }
  let detail: string | null = null;
  if (state.status === 'not-registered') {
    const key = deps.dkimKeys ? await providerSigningKey(deps.dkimKeys, domain) : undefined;
    detail = key
      ? `not registered with ${provider} yet: call POST .../domains/${domain}/verify again`
      : `${provider} signs with the domain's RSA DKIM key: create one (POST .../domains/${domain}/dkim-keys) and publish its record`;
  } else if (!state.sendingEnabled && state.dkim.selector) {
    detail = `${provider} is checking the DKIM record ${state.dkim.selector}._domainkey.${domain}: publish it as GET .../dkim-keys shows it`;
  }
  return { provider, ...state, detail };
}
