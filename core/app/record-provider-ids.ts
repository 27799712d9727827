// The provider's message ids (SES's, one per group of up to 50 recipients) go into the message
// log as soon as the provider accepted the message: SES events name only its own id, and the
// bounce stage finds our message, its tenant and user, through this record
// (MessageLog.findByProviderId). A failure to record is logged, not thrown: the message is sent
// by then, and a retried job would send it twice; its later events are then reported as unknown.
import { errorMessage } from '../log.js';
import type { Logger } from '../ports.js';
import type { Mailer } from '../ports/mailer.js';
import type { MessageLog } from '../stores.js';

export function recordingProviderIds(mailer: Mailer, log: Pick<MessageLog, 'recordProviderIds'>, logger: Logger): Mailer {
  return {
    async send(mail) {
      const result = await mailer.send(mail);
      const messageId = mail.tags?.messageId;
      if (messageId && result.providerMessageIds.length > 0) {
        try {
          await log.recordProviderIds(messageId, result.providerMessageIds);
        } catch (error: unknown) {
          logger.error('recording the provider message ids failed; provider events about this message will not find it', { messageId, providerMessageIds: result.providerMessageIds, error: errorMessage(error) });
        }
      }
      return result;
    },
  };
}
