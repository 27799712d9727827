// SES bounce and complaint events, in the wrappings they arrive in (SNS notification, bare event,
// EventBridge), become typed records: hard and soft recipients, the SES message id, our tags.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseSesEvent, SesEventError } from '../../../core/bounce/ses-event.js';

const sample = (name: string): string => readFileSync(new URL(`../../fixtures/ses/${name}`, import.meta.url), 'utf8');

describe('parseSesEvent', () => {
  it('reads a permanent bounce delivered through SNS: hard recipient, SES message id, our tags', () => {
    expect(parseSesEvent(sample('bounce-sns.json'))).toEqual({
      kind: 'bounce',
      sesMessageId: 'EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000',
      sentAt: Date.parse('2017-08-05T00:40:02.012Z'),
      at: Date.parse('2017-08-05T00:41:02.669Z'),
      feedbackId: '01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000',
      tags: { tenantId: 't_acme', userId: 'u_alice', messageId: 'Q7Kx2mP9' },
      bounceType: 'Permanent',
      bounceSubType: 'General',
      hard: [{ address: 'recipient@example.com', status: '5.1.1', action: 'failed', diagnostic: 'smtp; 550 5.1.1 user unknown', hard: true }],
      soft: [],
    });
  });

  it('reads a transient bounce from EventBridge as soft', () => {
    const event = parseSesEvent(JSON.parse(sample('transient-bounce-eventbridge.json')));
    expect(event).toMatchObject({ kind: 'bounce', bounceType: 'Transient', bounceSubType: 'MailboxFull', hard: [] });
    expect(event.kind === 'bounce' && event.soft).toEqual([{ address: 'full@example.com', status: '4.2.2', action: 'failed', diagnostic: 'smtp; 452 4.2.2 Mailbox full', hard: false }]);
  });

  it('reads a complaint (bare event, as SNS raw delivery sends it)', () => {
    expect(parseSesEvent(sample('complaint.json'))).toMatchObject({
      kind: 'complaint',
      sesMessageId: 'EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000',
      complainedRecipients: ['recipient@example.com'],
      feedbackType: 'abuse',
      tags: { tenantId: 't_acme' },
    });
  });

  it('reads identity feedback notifications (notificationType, no tags)', () => {
    const bounce = JSON.parse(sample('bounce-sns.json'));
    const event = JSON.parse(bounce.Message);
    const legacy = { notificationType: 'Bounce', bounce: event.bounce, mail: { ...event.mail, tags: undefined } };
    expect(parseSesEvent(JSON.stringify(legacy))).toMatchObject({ kind: 'bounce', tags: {}, hard: [{ address: 'recipient@example.com' }] });
  });

  it('passes over other event types', () => {
    expect(parseSesEvent(sample('delivery.json'))).toEqual({ kind: 'other', eventType: 'Delivery', sesMessageId: 'EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000' });
  });

  it('refuses what is not an SES event, with a reason', () => {
    expect(() => parseSesEvent('not json')).toThrow(SesEventError);
    expect(() => parseSesEvent({ Type: 'Notification', Message: '{"hello":1}' })).toThrow(/not an SES event: mail/);
    expect(() => parseSesEvent({ eventType: 'Bounce', mail: { messageId: 'x' } })).toThrow(/without a bounce/);
    expect(() => parseSesEvent({ eventType: 'Bounce', mail: { messageId: 'x' }, bounce: { bounceType: 'Permanent', bouncedRecipients: 'all' } })).toThrow(SesEventError);
  });
});
