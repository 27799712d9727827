// The facts a check sees at each SMTP phase of the ingress. The ingress fills them in; checks
// only read them (and may consult stores through their own dependencies).
import type { OutgoingUser, Tenant } from '../identity.js';
import type { UserSettings } from '../settings.js';

export interface Sender {
  user: OutgoingUser;
  tenant: Tenant;
  /** Effective settings: user override ?? tenant default ?? deployment default ?? built-in. */
  settings: UserSettings;
  /** How the identity was established. */
  via: 'auth' | 'ip';
}

export interface ConnectFacts {
  sessionId: string;
  clientIp: string;
  /** Which listener: submission (STARTTLS), submissions (implicit TLS) or bounce. */
  listener: 'submission' | 'submissions' | 'bounce';
  now: number;
}

export interface MailFromFacts extends ConnectFacts {
  helo: string;
  secure: boolean;
  sender: Sender;
  /** Envelope sender as given, '' for the null sender. */
  mailFrom: string;
  /** SIZE= parameter, if the client gave one. */
  declaredSize: number | undefined;
}

export interface RcptToFacts extends MailFromFacts {
  /** The recipient being decided now. */
  rcptTo: string;
  /** Recipients already accepted in this transaction. */
  acceptedRcpts: string[];
}

export interface DataFacts extends MailFromFacts {
  rcptTo: string[];
  size: number;
  /** Every From header field value of the message (there must be exactly one). */
  headerFrom: string[];
}
