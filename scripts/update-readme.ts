// Regenerates the README sections that are derived from code, so the documentation cannot drift:
// the configuration and settings tables (from the zod schemas' descriptions), the CLI
// reference (from the command table) and the metrics (from the metric table). `npm run docs` rewrites them; a test fails when stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { configSchema } from '../core/config.js';
import { userSettingsSchema } from '../core/settings.js';
import { schemaRows } from '../bin/commands/config.js';
import { commandGroups } from '../bin/commands/index.js';
import { emfName, emfValue, METRICS, type MetricName, type MetricSpec } from '../core/metric-names.js';

export const README = join(import.meta.dirname, '..', 'README.md');

export function generatedSections(): Record<string, string> {
  const cli: string[] = ['| command | what it does |', '|---|---|'];
  for (const [group, actions] of Object.entries(commandGroups)) {
    for (const [action, command] of Object.entries(actions)) {
      const usage = `npx outpost ${group}${action ? ` ${action}` : ''} ${command.usage}`.trim();
      cli.push(`| \`${usage}\` | ${command.summary.replace(/\|/g, '\\|')} |`);
    }
  }
  return {
    config: ['| key | default | meaning |', '|---|---|---|', ...schemaRows(configSchema)].join('\n'),
    settings: ['| key | built-in default | meaning |', '|---|---|---|', ...schemaRows(userSettingsSchema)].join('\n'),
    cli: cli.join('\n'),
    metrics: metricRows().join('\n'),
  };
}

const PUBLISHED_ON: Record<MetricSpec['on'], string> = { both: 'both', 'single-node': 'single node', aws: 'AWS' };

/** One row per metric: its Prometheus and CloudWatch names, type, labels, where it is published, what it means. */
function metricRows(): string[] {
  const rows = ['| metric (`/metrics`) | type | labels | CloudWatch (EMF, unit) | on | meaning |', '|---|---|---|---|---|---|'];
  for (const [name, spec] of Object.entries(METRICS) as Array<[MetricName, MetricSpec]>) {
    const labels = spec.labels.length > 0 ? spec.labels.map((label) => `\`${label}\``).join(', ') : '—';
    const buckets = spec.type === 'histogram' ? ` Buckets (s): ${spec.buckets.join(', ')}.` : '';
    const emf = spec.on === 'single-node' ? '—' : `\`${emfName(name)}\` (${emfValue(name, 1).unit})`;
    rows.push(`| \`${name}\` | ${spec.type} | ${labels} | ${emf} | ${PUBLISHED_ON[spec.on]} | ${(spec.help + buckets).replace(/\|/g, '\\|')} |`);
  }
  return rows;
}

/** The README with every `<!-- generated:NAME -->...<!-- /generated:NAME -->` section refreshed. */
export function refreshedReadme(text: string): string {
  let result = text;
  for (const [name, body] of Object.entries(generatedSections())) {
    const pattern = new RegExp(`(<!-- generated:${name} -->)[\\s\\S]*?(<!-- /generated:${name} -->)`);
    if (!pattern.test(result)) throw new Error(`README.md has no generated:${name} section`);
    result = result.replace(pattern, (_match, open: string, close: string) => `${open}\n${body}\n${close}`);
  }
  return result;
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  const before = readFileSync(README, 'utf8');
  const after = refreshedReadme(before);
  writeFileSync(README, after);
  process.stdout.write(before === after ? 'README.md is up to date\n' : 'README.md updated\n');
}
