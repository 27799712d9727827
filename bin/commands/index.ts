// Every CLI command, by group and action ('' is a group's only action).
import type { Command } from './common.js';
import { messageCommands, queueCommands } from './messages.js';
import { startCommand } from './start.js';
import { domainCommands, tenantCommands } from './tenants.js';
import { userCommands } from './users.js';
import { configCommands } from './config.js';
import { dkimCommands } from './dkim.js';
import { lockCommands, unlockCommand } from './policy.js';
import { quarantineCommands } from './quarantine.js';
import { suppressionCommands } from './suppression.js';
import { holdCommands } from './holds.js';
import { backupCommand } from './backup.js';

export type { CommandContext } from './common.js';

export const commandGroups: Record<string, Record<string, Command>> = {
  start: { '': startCommand },
  tenant: tenantCommands,
  domain: domainCommands,
  user: userCommands,
  lock: lockCommands,
  unlock: { '': unlockCommand },
  dkim: dkimCommands,
  suppression: suppressionCommands,
  quarantine: quarantineCommands,
  message: messageCommands,
  queue: { ...queueCommands, ...holdCommands },
  config: configCommands,
  backup: { '': backupCommand },
};
