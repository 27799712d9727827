// A notice (a DSN, a forwarded bounce) on the real SQLite stores: queued once, and its status is
// never put back to queued by the marker written after the send.
import { afterEach, expect, it } from 'vitest';
import { queueNotice, type Notice } from '../../../core/delivery/notice.js';
import type { Envelope } from '../../../core/ports.js';
import { closeTempStores, openTempStores } from '../../helpers/temp-stores.js';

afterEach(closeTempStores);

async function setup() {
  const { stores } = await openTempStores('notice', { hostname: 'relay.test' });
  const notice: Notice = {
    messageId: 'M1-dsn1',
    about: { tenantId: 't1', userId: 'u1' },
    to: 'alice@acme.test',
    blobKey: 'dsn/M1-dsn1',
    subject: 'Undelivered Mail Returned to Sender',
    clientIp: '',
    helo: 'relay.test',
    detail: { dsnFor: 'M1' },
    compose: () => Buffer.from('Subject: Undelivered Mail Returned to Sender\r\n\r\nSorry.\r\n'),
  };
  return { stores, notice };
}

it('is not put back to queued when delivery logged it delivered before the send returned', async () => {
  const { stores, notice } = await setup();
  const queued: Envelope[] = [];
  // A delivery faster than the notice's writer: done the moment the job is queued.
  const enqueue = async (envelope: Envelope): Promise<void> => {
    queued.push(envelope);
    await stores.log.addEvent(envelope.messageId, 'delivered', {}, 'delivered');
  };
  await queueNotice({ blobs: stores.blobs, log: stores.log, clock: stores.clock, enqueue }, notice);
  const logged = await stores.log.get(notice.messageId);
  expect(logged?.events.map((event) => event.event)).toEqual(['delivered', 'queued']);
  expect(logged?.message.status).toBe('delivered');
  expect(queued.map((envelope) => envelope.mailFrom)).toEqual(['']);
});

it('is queued before any delivery, and once: a repeat finds the marker and queues nothing', async () => {
  const { stores, notice } = await setup();
  const queued: Envelope[] = [];
  const deps = { blobs: stores.blobs, log: stores.log, clock: stores.clock, enqueue: async (envelope: Envelope) => void queued.push(envelope) };
  await queueNotice(deps, notice);
  expect((await stores.log.get(notice.messageId))?.message.status).toBe('queued');
  await queueNotice(deps, notice);
  expect(queued).toHaveLength(1);
  expect(await stores.blobs.exists(notice.blobKey)).toBe(true);
});
