// Counters and gauges in the Prometheus text exposition format (version 0.0.4), for the single
// node's /metrics. On AWS the same names are emitted as CloudWatch EMF metrics.

type Labels = Record<string, string>;

interface Family {
  help: string;
  type: 'counter' | 'gauge';
  values: Map<string, { labels: Labels; value: number }>;
}

function labelKey(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((key) => `${key}=${labels[key]}`)
    .join(',');
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

export class Metrics {
  private readonly families = new Map<string, Family>();

  private family(name: string, type: Family['type'], help: string): Family {
    let family = this.families.get(name);
    if (!family) {
      family = { help, type, values: new Map() };
      this.families.set(name, family);
    }
    return family;
  }

  /** Declares a metric so that it is exposed (as 0) before its first event. */
  declare(name: string, type: Family['type'], help: string): void {
    const family = this.family(name, type, help);
    if (family.values.size === 0) family.values.set('', { labels: {}, value: 0 });
  }

  inc(name: string, help: string, labels: Labels = {}, by = 1): void {
    const family = this.family(name, 'counter', help);
    family.values.delete('');
    const key = labelKey(labels);
    const current = family.values.get(key);
    if (current) current.value += by;
    else family.values.set(key, { labels, value: by });
  }

  set(name: string, help: string, labels: Labels, value: number): void {
    const family = this.family(name, 'gauge', help);
    family.values.delete('');
    family.values.set(labelKey(labels), { labels, value });
  }

  /** Prometheus text format. */
  render(): string {
    const lines: string[] = [];
    for (const [name, family] of [...this.families.entries()].sort(([a], [b]) => a.localeCompare(b))) {
      lines.push(`# HELP ${name} ${family.help}`, `# TYPE ${name} ${family.type}`);
      for (const { labels, value } of family.values.values()) {
        const text = Object.entries(labels)
          .map(([key, item]) => `${key}="${escapeLabel(item)}"`)
          .join(',');
        lines.push(`${name}${text ? `{${text}}` : ''} ${Number.isFinite(value) ? value : 0}`);
      }
    }
    return lines.join('\n') + '\n';
  }
}
