// Structured JSON logs, one object a line on stdout. Never log message bodies or credentials.
import type { Logger } from './ports.js';

type Level = 'debug' | 'info' | 'warn' | 'error';
const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function createLogger(
  component: string,
  options: { level?: Level; write?: (line: string) => void } = {},
): Logger {
  const envLevel = process.env.OUTPOST_LOG_LEVEL;
  const level: Level =
    options.level ?? (envLevel === 'debug' || envLevel === 'warn' || envLevel === 'error' ? envLevel : 'info');
  const write = options.write ?? ((line: string) => process.stdout.write(line + '\n'));
  const emit = (at: Level, message: string, fields?: Record<string, unknown>): void => {
    if (order[at] < order[level]) return;
    write(JSON.stringify({ time: new Date().toISOString(), level: at, component, message, ...fields }));
  };
  return {
    debug: (message, fields) => emit('debug', message, fields),
    info: (message, fields) => emit('info', message, fields),
    warn: (message, fields) => emit('warn', message, fields),
    error: (message, fields) => emit('error', message, fields),
  };
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
