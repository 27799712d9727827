// The EmailIdentities port on the SESv2 API: one domain identity per domain Outpost verified,
// with "bring your own DKIM" (DkimSigningAttributes: Outpost's selector and private key), in
// Outpost's configuration set so that SES events of mail from the domain come back to Outpost
// even when a send names no configuration set. SES accepts RSA keys of 1024 or 2048 bits only,
// as the base64 of the PKCS#1 DER (the PEM body of `openssl genrsa`).
import { createPrivateKey } from 'node:crypto';
import {
  CreateEmailIdentityCommand,
  DeleteEmailIdentityCommand,
  GetEmailIdentityCommand,
  PutEmailIdentityDkimSigningAttributesCommand,
  type SESv2Client,
} from '@aws-sdk/client-sesv2';
import type { DkimSigningKey } from '../../core/dkim/keys.js';
import type { EmailIdentities, ProviderVerification, SendingIdentityState } from '../../core/ports/email-identities.js';

export interface SesIdentitiesOptions {
  client: SESv2Client;
  /** The configuration set new identities use by default (its event destination feeds the bounce stage). */
  configurationSet?: string;
}

const VERIFICATION: Record<string, ProviderVerification> = {
  PENDING: 'pending',
  SUCCESS: 'success',
  FAILED: 'failed',
  TEMPORARY_FAILURE: 'temporary-failure',
  NOT_STARTED: 'not-started',
};

const verification = (status: string | undefined): ProviderVerification | null => (status === undefined ? null : (VERIFICATION[status] ?? null));

/** The private key as SESv2 takes it: base64 of the PKCS#1 DER, RSA only. */
export function sesPrivateKey(key: DkimSigningKey): string {
  if (key.algorithm !== 'rsa') throw new Error(`SES signs with RSA keys only; selector ${key.selector} of ${key.domain} is ${key.algorithm}`);
  return createPrivateKey(key.privateKeyPem).export({ type: 'pkcs1', format: 'der' }).toString('base64');
}

const named = (error: unknown, name: string): boolean => error instanceof Error && error.name === name;

export class SesIdentities implements EmailIdentities {
  readonly provider = 'ses' as const;

  constructor(private readonly options: SesIdentitiesOptions) {}

  async register(domain: string, key: DkimSigningKey): Promise<void> {
    const signing = { DomainSigningSelector: key.selector, DomainSigningPrivateKey: sesPrivateKey(key) };
    try {
      await this.options.client.send(
        new CreateEmailIdentityCommand({
          EmailIdentity: domain,
          DkimSigningAttributes: signing,
          ...(this.options.configurationSet ? { ConfigurationSetName: this.options.configurationSet } : {}),
        }),
      );
    } catch (error: unknown) {
      if (!named(error, 'AlreadyExistsException')) throw error;
      // Registered before (an earlier verify, or a key that was rotated since): SES now signs with this key.
      await this.options.client.send(new PutEmailIdentityDkimSigningAttributesCommand({ EmailIdentity: domain, SigningAttributesOrigin: 'EXTERNAL', SigningAttributes: signing }));
    }
  }

  async state(domain: string): Promise<SendingIdentityState> {
    try {
      const found = await this.options.client.send(new GetEmailIdentityCommand({ EmailIdentity: domain }));
      const dkim = found.DkimAttributes;
      const outpostKey = dkim?.SigningAttributesOrigin === 'EXTERNAL';
      return {
        status: verification(found.VerificationStatus) ?? 'pending',
        sendingEnabled: found.VerifiedForSendingStatus === true,
        // With our own key, SES lists its selector as the one token.
        dkim: { status: verification(dkim?.Status), selector: outpostKey ? (dkim?.Tokens?.[0] ?? null) : null, outpostKey },
      };
    } catch (error: unknown) {
      if (named(error, 'NotFoundException')) return { status: 'not-registered', sendingEnabled: false, dkim: { status: null, selector: null, outpostKey: false } };
      throw error;
    }
  }

  async remove(domain: string): Promise<void> {
    try {
      await this.options.client.send(new DeleteEmailIdentityCommand({ EmailIdentity: domain }));
    } catch (error: unknown) {
      if (!named(error, 'NotFoundException')) throw error;
    }
  }
}
