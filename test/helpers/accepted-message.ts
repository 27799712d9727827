// An accepted message as the ingress hands it to the group commit: log record, 'received' event,
// scan job and, when `content` is given, the body stored inline.
import type { AcceptedMessage } from '../../smtp-ec2/ingress.js';

export function acceptedMessage(id: string, content?: string): AcceptedMessage {
  return {
    ...(content === undefined ? {} : { content: { blobKey: `messages/${id}.eml`, bytes: Buffer.from(content) } }),
    record: { id, tenantId: 't', userId: 'u', identity: 'alice@acme.test', mailFrom: 'alice@acme.test', rcptTo: ['bob@example.org'], size: 10, subject: null, status: 'queued', receivedAt: 1 },
    event: { name: 'received', detail: { size: 10 } },
    queue: 'scan',
    body: JSON.stringify({ messageId: id }),
  };
}
