// The policy admits a message for its header From, and the DKIM signer signs it for its header
// From: both read it with parseHeaderFrom, so tricky From headers (encoded words, comments,
// groups, two addresses, an address hidden next to another) cannot be admitted for one address
// and signed for another. Each case runs the ingress policy's DATA checks and the real preparer
// (SQLite key store, real signatures) on the same message.
import { beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../adapters/local/sqlite.js';
import { SqliteBatvKeyStore } from '../../adapters/local/batv-key-store.js';
import { SqliteDkimKeyStore } from '../../adapters/local/dkim-key-store.js';
import { localSecretBoxFromKey } from '../../adapters/local/secret-box.js';
import { runChecks } from '../../core/checks/check.js';
import { addDkimKey } from '../../core/dkim/keys.js';
import { makeOutgoingPreparer } from '../../core/dkim/sign.js';
import { headerBlock, headerValues } from '../../core/headers.js';
import type { Envelope } from '../../core/ports.js';
import { builtInSettings } from '../../core/settings.js';
import { world, type World } from './policy/fixtures.js';

const T0 = Date.UTC(2026, 10, 25, 12);
const db = openDatabase(':memory:');
const box = localSecretBoxFromKey(Buffer.alloc(32, 5));
const keys = new SqliteDkimKeyStore(db, box, { now: () => T0 });
let w: World;

beforeAll(async () => {
  // A domain user of acme.example: it may send as any address of acme.example, and of nothing else.
  w = await world({ kind: 'domain', identity: 'acme.example' });
  await addDkimKey(keys, { domain: 'acme.example', selector: 's1', now: T0 });
  await addDkimKey(keys, { domain: 'evil.example', selector: 's1', now: T0 });
});

const tenants: Record<string, string> = { 'evil.example': 'another-tenant' };
const preparer = () =>
  makeOutgoingPreparer({
    keys,
    settingsFor: () => builtInSettings,
    tenantOfDomain: async (domain) => (domain === 'acme.example' ? w.tenant.id : tenants[domain]),
    batvKeys: new SqliteBatvKeyStore(db, box),
    directSmtp: false,
    clock: { now: () => T0 },
  });

function message(fromLines: string[]): Buffer {
  return Buffer.from([...fromLines.map((value) => `From: ${value}`), 'To: bob@example.org', 'Subject: hi', '', 'Hello', ''].join('\r\n'));
}

// policy: PASS or the refusal symbol; signedAs: the d= of the signature, or undefined (unsigned).
const cases: Array<{ name: string; from: string[]; policy: string; signedAs?: string }> = [
  { name: 'plain', from: ['Bob <bob@acme.example>'], policy: 'PASS', signedAs: 'acme.example' },
  { name: 'Q encoded-word name', from: ['=?utf-8?q?Bob_B=C3=B6hm?= <bob@acme.example>'], policy: 'PASS', signedAs: 'acme.example' },
  { name: 'B encoded-word hiding an address', from: ['=?utf-8?b?PGV2ZUBldmlsLmV4YW1wbGU+?= <bob@acme.example>'], policy: 'PASS', signedAs: 'acme.example' },
  { name: 'quoted name that looks like an address', from: ['"eve@evil.example" <bob@acme.example>'], policy: 'PASS', signedAs: 'acme.example' },
  { name: 'comment holding an angle address', from: ['bob@acme.example (Eve <eve@evil.example>)'], policy: 'PASS', signedAs: 'acme.example' },
  { name: 'nested comments', from: ['(x (y <eve@evil.example>)) bob@acme.example'], policy: 'PASS', signedAs: 'acme.example' },
  { name: 'comment with the allowed address, foreign mailbox', from: ['eve@evil.example (<bob@acme.example>)'], policy: 'HEADER_FROM_SEND_AS_NOT_ALLOWED' },
  { name: 'group', from: ['Friends: eve@evil.example, bob@acme.example;'], policy: 'HEADER_FROM_INVALID' },
  // Both read both addresses: the policy refuses the foreign one (so this never reaches the
  // signer); the signer, handed it anyway, signs only for the sender's own domain.
  { name: 'two addresses, one foreign', from: ['bob@acme.example, eve@evil.example'], policy: 'HEADER_FROM_SEND_AS_NOT_ALLOWED', signedAs: 'acme.example' },
  { name: 'two angle addresses in one mailbox', from: ['Bob <bob@acme.example> <eve@evil.example>'], policy: 'HEADER_FROM_INVALID' },
  { name: 'bare address followed by an angle address', from: ['bob@acme.example <eve@evil.example>'], policy: 'HEADER_FROM_INVALID' },
  { name: 'two From fields', from: ['bob@acme.example', 'eve@evil.example'], policy: 'HEADER_FROM_COUNT' },
  { name: 'bare name', from: ['Bob'], policy: 'HEADER_FROM_INVALID' },
];

describe('policy and DKIM signer read the same From', () => {
  for (const testCase of cases) {
    it(`${testCase.name}: ${testCase.from.join(' / ')}`, async () => {
      const raw = message(testCase.from);
      // The ingress hands the policy the From values of the header block it stored.
      const facts = await w.dataFacts(headerValues(headerBlock(raw), 'from'), { mailFrom: '' });
      const { final } = await runChecks(w.policy.data, facts);
      expect(final.action === 'reject' ? final.symbols[0]?.name : 'PASS').toBe(testCase.policy);

      const envelope: Envelope = { messageId: 'Q1', tenantId: w.tenant.id, userId: w.user.id, identity: 'acme.example', mailFrom: '', rcptTo: ['bob@example.org'], blobKey: 'b', size: raw.length, receivedAt: T0, clientIp: '192.0.2.1', helo: 'client' };
      const prepared = await preparer()(raw, envelope);
      expect(prepared.dkim.signed ? prepared.dkim.domain : undefined).toBe(testCase.signedAs);
      // Nothing the policy refused as unreadable is signed for anyone.
      if (testCase.policy === 'HEADER_FROM_INVALID' || testCase.policy === 'HEADER_FROM_COUNT') expect(prepared.dkim.signed).toBe(false);
    });
  }
});
