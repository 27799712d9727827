// The sending provider's own record of a domain: SES sends only from domains it has verified
// itself (email identities), so in `ses` delivery mode every domain Outpost verifies is registered
// there too (adapters/aws/ses-identities.ts). DKIM stays Outpost's: the identity signs with the
// domain's Outpost key and selector ("bring your own DKIM"), so SES verifies the domain by the
// same DNS record the tenant already published for Outpost, and no second record is needed.
// The single node delivers by SMTP and has no such port.
//
// Promises every implementation keeps:
// - `register` is idempotent: registering a registered domain replaces its DKIM key, it never
//   fails because the identity exists;
// - `state` of a domain the provider does not know is `not-registered`, not an error;
// - `remove` of a domain the provider does not know succeeds;
// - the private key goes to the provider only; it is never logged or returned.
import type { DkimSigningKey } from '../dkim/keys.js';

/** The provider's verification of a domain or of its DKIM record (SES's statuses, lower case). */
export type ProviderVerification = 'pending' | 'success' | 'failed' | 'temporary-failure' | 'not-started';

export interface SendingIdentityState {
  /** `not-registered`: the provider has no identity for the domain (yet). */
  status: ProviderVerification | 'not-registered';
  /** Whether the provider sends mail from the domain now. */
  sendingEnabled: boolean;
  dkim: {
    status: ProviderVerification | null;
    /** The selector the provider signs with, when it signs with Outpost's key. */
    selector: string | null;
    /** True when the provider signs with Outpost's key (not a key of its own). */
    outpostKey: boolean;
  };
}

export interface EmailIdentities {
  /** The provider's name as the API shows it. */
  readonly provider: 'ses';
  /** Creates the domain's identity signing with `key`, or points an existing identity at `key`. */
  register(domain: string, key: DkimSigningKey): Promise<void>;
  state(domain: string): Promise<SendingIdentityState>;
  remove(domain: string): Promise<void>;
}
