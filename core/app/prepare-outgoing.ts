// The last step before a message leaves: DKIM signing and BATV tagging (core/dkim/sign.ts),
// with what was done recorded in the message's log ('dkim-signed' with the selector and domain,
// or 'dkim-unsigned' with the reason; whether the sender was BATV-tagged), so that an operator
// can tell why a receiver saw an unsigned message.
import type { PrepareMessage } from '../delivery/deliver.js';
import type { OutgoingPreparer } from '../dkim/sign.js';
import type { MessageLog } from '../stores.js';

export function preparedAndRecorded(preparer: OutgoingPreparer, log: Pick<MessageLog, 'addEvent'>): PrepareMessage {
  return async (raw, envelope) => {
    const prepared = await preparer(raw, envelope);
    await log.addEvent(envelope.messageId, prepared.dkim.signed ? 'dkim-signed' : 'dkim-unsigned', { ...prepared.dkim, batv: prepared.batv });
    return prepared;
  };
}
