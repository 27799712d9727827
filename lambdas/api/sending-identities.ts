// The API's side of the sending provider's identities (SES in `ses` delivery mode): domain
// responses carry the provider's state next to Outpost's, and the routes that verify a domain,
// change its DKIM keys or remove it keep the provider in step. Deployments without the port
// (the single node) answer as before, without the field.
import {
  registerSendingIdentity,
  removeSendingIdentity,
  sendingIdentityView,
  unverifiedSendingIdentity,
  type SendingIdentityDeps,
  type SendingIdentityView,
} from '../../core/sending-identities.js';
import type { ApiDeps } from './deps.js';

function sendingDeps(deps: ApiDeps): SendingIdentityDeps | undefined {
  if (!deps.emailIdentities) return undefined;
  return { identities: deps.emailIdentities, ...(deps.dkimKeys ? { dkimKeys: deps.dkimKeys } : {}), ...(deps.logger ? { logger: deps.logger } : {}) };
}

/** Adds the provider's state to a domain response (verified: asked of the provider; pending: not registered). */
export async function withSendingIdentity<T extends { name: string; state: 'verified' | 'pending' }>(deps: ApiDeps, domain: T): Promise<T & { sendingIdentity?: SendingIdentityView }> {
  const sending = sendingDeps(deps);
  if (!sending) return domain;
  const sendingIdentity = domain.state === 'verified' ? await sendingIdentityView(sending, domain.name) : unverifiedSendingIdentity(sending.identities);
  return { ...domain, sendingIdentity };
}

/** SES answers identity reads at a few requests per second: a page of domains asks a few at a time. */
const STATE_READS_AT_ONCE = 4;

/** withSendingIdentity for a page of domains, in order. */
export async function withSendingIdentities<T extends { name: string; state: 'verified' | 'pending' }>(deps: ApiDeps, domains: T[]): Promise<Array<T & { sendingIdentity?: SendingIdentityView }>> {
  const out: Array<T & { sendingIdentity?: SendingIdentityView }> = [];
  for (let at = 0; at < domains.length; at += STATE_READS_AT_ONCE) {
    out.push(...(await Promise.all(domains.slice(at, at + STATE_READS_AT_ONCE).map((domain) => withSendingIdentity(deps, domain)))));
  }
  return out;
}

/** After a domain became verified or its DKIM keys changed: registers it, or points it at the current key. */
export async function syncSendingIdentity(deps: ApiDeps, domain: string): Promise<void> {
  const sending = sendingDeps(deps);
  if (sending) await registerSendingIdentity(sending, domain);
}

/** After a domain left its tenant: the provider stops sending from it. */
export async function dropSendingIdentity(deps: ApiDeps, domain: string): Promise<void> {
  const sending = sendingDeps(deps);
  if (sending) await removeSendingIdentity(sending, domain);
}
