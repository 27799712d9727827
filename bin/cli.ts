// The operator CLI: `npx outpost <group> <action> [options]`. It works on the same data folder
// as the running relay (OUTPOST_DATA_DIR or dataDir in outpost.config.json).
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from '../core/config.js';
import { IdentityError } from '../core/identity.js';
import { ConflictError, NotFoundError } from '../core/stores.js';
import { commandGroups, type CommandContext } from './commands/index.js';
import { UsageError } from './commands/common.js';

function usage(): string {
  const lines = ['usage: npx outpost <command>', ''];
  for (const [group, actions] of Object.entries(commandGroups)) {
    for (const [action, command] of Object.entries(actions)) {
      lines.push(`  outpost ${group}${action ? ` ${action}` : ''} ${command.usage}`.trimEnd());
      lines.push(`      ${command.summary}`);
    }
  }
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [group, maybeAction, ...rest] = argv;
  if (!group || group === 'help' || group === '--help' || group === '-h') {
    process.stdout.write(usage() + '\n');
    return group ? 0 : 2;
  }
  const actions = commandGroups[group];
  if (!actions) throw new UsageError(`unknown command "${group}"`);
  let action = maybeAction ?? '';
  let args = rest;
  if (!actions[action]) {
    // A group with a default action (e.g. `start`) takes the rest as its arguments.
    if (actions['']) {
      args = maybeAction === undefined ? rest : [maybeAction, ...rest];
      action = '';
    } else {
      throw new UsageError(`unknown command "${group} ${maybeAction ?? ''}"`.trimEnd());
    }
  }
  const command = actions[action];
  if (!command) throw new UsageError(`unknown command "${group} ${action}"`);
  const parsed = parseArgs({ args, options: command.options ?? {}, allowPositionals: true, strict: true });
  let config: Config;
  try {
    config = loadConfig();
  } catch (error: unknown) {
    if (error instanceof ConfigError) {
      process.stderr.write(`outpost: ${error.message}\n`);
      return 78;
    }
    throw error;
  }
  const ctx: CommandContext = {
    config,
    values: parsed.values as Record<string, string | boolean | undefined>,
    positionals: parsed.positionals,
    out: (line) => process.stdout.write(line + '\n'),
  };
  return (await command.run(ctx)) ?? 0;
}

// `npx outpost … | head` closes stdout early: that is the reader's choice, not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
  })
  .catch((error: unknown) => {
    const known = error instanceof UsageError || error instanceof NotFoundError || error instanceof ConflictError || error instanceof IdentityError;
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`outpost: ${message}\n`);
    if (error instanceof UsageError) process.stderr.write(`run "npx outpost help" for the list of commands\n`);
    else if (!known && error instanceof Error && process.env.OUTPOST_DEBUG) process.stderr.write(`${error.stack ?? ''}\n`);
    process.exitCode = error instanceof UsageError ? 2 : 1;
  });
