// `outpost start`: the single node, in the foreground, until SIGTERM or SIGINT.
import { createLogger } from '../../core/log.js';
import { logUnhandledRejections, startNode } from '../single-node.js';
import type { Command } from './common.js';

export const startCommand: Command = {
  usage: '',
  summary: 'Run the single-node relay (SMTP submission, bounce listener, pipeline, API and panel).',
  async run(ctx) {
    const logger = createLogger('outpost');
    logUnhandledRejections(logger);
    const node = await startNode(ctx.config, { logger });
    const host = ctx.config.listenAddress === '0.0.0.0' ? 'localhost' : ctx.config.listenAddress;
    const lines = [
      '',
      'Outpost single node is running.',
      `  data folder     ${ctx.config.dataDir}`,
      `  submission      smtp://${host}:${node.ports.submission}  (STARTTLS, then AUTH PLAIN/LOGIN)`,
      `  submissions     smtps://${host}:${node.ports.submissions}  (implicit TLS)`,
      `  bounces         smtp://${host}:${node.ports.bounce}  (DSNs to BATV-tagged return paths)`,
      `  API and panel   http://${host}:${node.ports.http}/  (API under /v1, health at /healthz)`,
      `  TLS certificate ${node.certPath}`,
      node.operatorToken.created
        ? `  operator token  ${node.operatorToken.token}  (created now, kept in ${node.operatorToken.path}; log in to the panel with it)`
        : `  operator token  ${node.operatorToken.path ? `in ${node.operatorToken.path}` : 'from OUTPOST_OPERATOR_TOKEN / config'} (log in to the panel with it)`,
      `  delivery        ${ctx.config.delivery.relayHost ? `through smarthost ${ctx.config.delivery.relayHost}` : 'direct, by MX lookup'}`,
      ...node.warnings.map((warning) => `  ${warning}`),
      '',
      'First message: npx outpost tenant add acme && npx outpost domain add --tenant acme acme.example',
      '  && npx outpost user add --tenant acme alice@acme.example   (prints a password), then',
      `  swaks --server ${host}:${node.ports.submission} --tls --auth-user alice@acme.example --auth-password PASSWORD --from alice@acme.example --to someone@example.org`,
      '',
    ];
    process.stderr.write(lines.join('\n') + '\n');
    await new Promise<void>((resolve) => {
      const onSignal = (signal: NodeJS.Signals): void => {
        logger.info('signal received', { signal });
        node.stop().then(resolve, resolve);
      };
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
    });
    return 0;
  },
};
