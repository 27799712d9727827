import { describe, expect, it } from 'vitest';
import { createPublicKey } from 'node:crypto';
import { dkimDnsRecord, generateDkimKeyPair, newSelectorName, normaliseSelector, publicKeyOf } from '../../../core/dkim/keys.js';

describe('DKIM key generation', () => {
  it('makes 2048-bit RSA keys whose p= is the SPKI DER of the public key', async () => {
    const pair = await generateDkimKeyPair('rsa');
    const key = createPublicKey({ key: Buffer.from(pair.publicKey, 'base64'), format: 'der', type: 'spki' });
    expect(key.asymmetricKeyType).toBe('rsa');
    expect(key.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(publicKeyOf(pair.privateKeyPem, 'rsa')).toBe(pair.publicKey);
  });

  it('makes Ed25519 keys whose p= is the raw 32-byte public key (RFC 8463)', async () => {
    const pair = await generateDkimKeyPair('ed25519');
    expect(Buffer.from(pair.publicKey, 'base64')).toHaveLength(32);
    expect(publicKeyOf(pair.privateKeyPem, 'ed25519')).toBe(pair.publicKey);
  });
});

describe('the DNS record to publish', () => {
  it('splits an RSA record into strings of at most 255 characters', async () => {
    const pair = await generateDkimKeyPair('rsa');
    const record = dkimDnsRecord('example.com', 'o20261125', 'rsa', pair.publicKey);
    expect(record.name).toBe('o20261125._domainkey.example.com.');
    expect(record.value).toBe(`v=DKIM1; k=rsa; p=${pair.publicKey}`);
    const strings = [...record.zoneLine.matchAll(/"([^"]*)"/g)].map((match) => match[1] ?? '');
    expect(strings.length).toBeGreaterThan(1);
    for (const part of strings) expect(part.length).toBeLessThanOrEqual(255);
    expect(strings.join('')).toBe(record.value);
    expect(record.zoneLine.startsWith('o20261125._domainkey.example.com. IN TXT "v=DKIM1; k=rsa; p=')).toBe(true);
  });

  it('writes an Ed25519 record as one string with k=ed25519', () => {
    const p = Buffer.alloc(32, 7).toString('base64');
    expect(dkimDnsRecord('example.com', 's', 'ed25519', p).zoneLine).toBe(`s._domainkey.example.com. IN TXT "v=DKIM1; k=ed25519; p=${p}"`);
  });
});

describe('selectors', () => {
  it('accepts DNS labels and refuses anything else', () => {
    expect(normaliseSelector('Mail2026')).toBe('mail2026');
    expect(normaliseSelector('a.b-c')).toBe('a.b-c');
    for (const bad of ['', '-a', 'a_b', 'a..b', 'x'.repeat(64), 'a b']) expect(() => normaliseSelector(bad), bad).toThrow(/selector/);
  });

  it('names new selectors by date, with a suffix when the name is taken', () => {
    const now = Date.UTC(2026, 10, 25);
    expect(newSelectorName(now, new Set())).toBe('o20261125');
    expect(newSelectorName(now, new Set(['o20261125', 'o20261125-2']))).toBe('o20261125-3');
  });
});
