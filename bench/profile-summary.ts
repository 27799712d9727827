// Where a thread's time goes, from a V8 .cpuprofile (`node --cpu-prof`): its busy share second by
// second, then self and inclusive time over the busy seconds only (a run's start-up and the idle
// wait for the queue to drain would otherwise hide the burst). Used by bench:ingress --profile,
// and on its own:
//
//   npx tsx bench/profile-summary.ts FILE.cpuprofile [--from S] [--to S] [--top N]
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }>;
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

const ROOT = join(import.meta.dirname, '..');
/** A second counts as part of the burst when the thread was busy for more than this share of it. */
const BUSY_SHARE = 0.5;

export interface SummaryOptions {
  /** First and last second (from the profile's start) to summarise; by default every busy second (not the idle ones between bursts). */
  from?: number;
  to?: number;
  top?: number;
}

export function summariseProfile(profile: CpuProfile, options: SummaryOptions = {}): string {
  const top = options.top ?? 25;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const name = (id: number): string => {
    const frame = byId.get(id)?.callFrame;
    if (!frame) return '(unknown)';
    const where = frame.url ? `${frame.url.replace(/^file:\/\//, '').replace(ROOT + '/', '')}:${frame.lineNumber + 1}` : '';
    return `${frame.functionName || '(anonymous)'} ${where}`.trim();
  };
  const idle = (id: number) => byId.get(id)?.callFrame.functionName === '(idle)';
  // The time of each sample, and the sampled time it stands for (the delta to the next one).
  let clock = profile.startTime;
  const at = profile.timeDeltas.map((delta) => (clock += delta));
  const seconds = new Map<number, { busy: number; all: number }>();
  profile.samples.forEach((id, i) => {
    const second = Math.floor(((at[i] ?? 0) - profile.startTime) / 1e6);
    const span = profile.timeDeltas[i + 1] ?? 0;
    const entry = seconds.get(second) ?? { busy: 0, all: 0 };
    entry.all += span;
    if (!idle(id)) entry.busy += span;
    seconds.set(second, entry);
  });
  const busySeconds = [...seconds].filter(([, entry]) => entry.all > 0 && entry.busy / entry.all > BUSY_SHARE).map(([second]) => second);
  const chosen = options.from !== undefined || options.to !== undefined;
  const from = options.from ?? 0;
  const to = options.to ?? Infinity;
  const counted = (second: number): boolean => (chosen ? second >= from && second < to + 1 : busySeconds.includes(Math.floor(second)));
  const lines = [`busy share by second: ${[...seconds].map(([second, entry]) => `${second}:${Math.round((100 * entry.busy) / Math.max(1, entry.all))}`).join(' ')}`];
  if (!chosen && busySeconds.length === 0) return [...lines, 'no busy second'].join('\n');

  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  let busy = 0;
  profile.samples.forEach((id, i) => {
    const second = ((at[i] ?? 0) - profile.startTime) / 1e6;
    if (!counted(second)) return;
    const span = profile.timeDeltas[i + 1] ?? 0;
    total += span;
    if (idle(id)) return;
    busy += span;
    self.set(name(id), (self.get(name(id)) ?? 0) + span);
    // Each function once per sample, however deep it recurses.
    const seen = new Set<string>();
    for (let node: number | undefined = id; node !== undefined; node = parent.get(node)) {
      const key = name(node);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + span);
    }
  });
  const ranked = (times: Map<string, number>) =>
    [...times]
      .sort((x, y) => y[1] - x[1])
      .slice(0, top)
      .map(([key, span]) => `${((100 * span) / Math.max(1, total)).toFixed(1).padStart(5)}%  ${key}`);
  lines.push(`${chosen ? `seconds ${from}–${to}` : `${busySeconds.length} busy seconds`}: ${(total / 1e6).toFixed(1)} s sampled, busy ${((100 * busy) / Math.max(1, total)).toFixed(1)} %`);
  lines.push('self time:', ...ranked(self), 'inclusive time:', ...ranked(inclusive));
  return lines.join('\n');
}

export async function summariseProfileFile(path: string, options: SummaryOptions = {}): Promise<string> {
  return summariseProfile(JSON.parse(await readFile(path, 'utf8')) as CpuProfile, options);
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { from: { type: 'string' }, to: { type: 'string' }, top: { type: 'string' } } });
  const file = positionals[0];
  if (!file) throw new Error('usage: npx tsx bench/profile-summary.ts FILE.cpuprofile [--from S] [--to S] [--top N]');
  const options: SummaryOptions = {
    ...(values.from === undefined ? {} : { from: Number(values.from) }),
    ...(values.to === undefined ? {} : { to: Number(values.to) }),
    ...(values.top === undefined ? {} : { top: Number(values.top) }),
  };
  process.stdout.write(`${await summariseProfileFile(file, options)}\n`);
}
