// `outpost backup DIR`: a consistent copy of the data folder while the relay runs.
import { resolve } from 'node:path';
import { positional, withStores, type Command } from './common.js';

export const backupCommand: Command = {
  usage: 'DIR',
  summary: 'Copy the database (online backup), message files, secret key file, operator token and TLS material into the new folder DIR, while the relay runs.',
  async run(ctx) {
    const destination = resolve(positional(ctx, 0, 'DIR'));
    await withStores(ctx, async (stores) => {
      const summary = await stores.database.backup(destination);
      ctx.out(`backup written to ${summary.destination}`);
      ctx.out(`  database          schema version ${summary.schemaVersion}, ${summary.queued} messages in the pipeline queues`);
      ctx.out(`  message files     ${summary.messageFiles}`);
      ctx.out(`  other files       ${summary.otherFiles.join(', ') || '-'}`);
      if (summary.missingFiles > 0) {
        ctx.out(`  note              ${summary.missingFiles} queued messages finished while the backup ran; their files are gone and a restore sets them aside`);
      }
      if (ctx.config.smtp.tlsKeyFile) ctx.out(`  note              the configured TLS key and certificate (${ctx.config.smtp.tlsKeyFile}) live outside the data folder: back them up too`);
      ctx.out('restore: stop the relay, copy DIR into an empty data folder (OUTPOST_DATA_DIR), start the relay');
    });
  },
};
