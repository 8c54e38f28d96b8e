import type { Histogram } from './histogram.ts';

/** Label names to values of one sample; rendered in insertion order. */
export type Labels = Readonly<Record<string, string>>;

/**
 * Builds a page in the Prometheus text exposition format 0.0.4: HELP and TYPE once per metric, before its
 * samples; label values escaped. What `sessions().prometheus()` and `db.prometheus()` answer with.
 *
 * @example
 *   const page = new PrometheusText();
 *   page.counter('clones_data_writes_total', 'Writes on the primary.', [[{}, 12]]);
 *   res.end(page.toString());
 */
export class PrometheusText {
  readonly #lines: string[] = [];

  counter(name: string, help: string, samples: Iterable<readonly [Labels, number]>): this {
    return this.#metric(name, help, 'counter', samples);
  }

  gauge(name: string, help: string, samples: Iterable<readonly [Labels, number]>): this {
    return this.#metric(name, help, 'gauge', samples);
  }

  histogram(name: string, help: string, series: Iterable<readonly [Labels, Histogram]>): this {
    this.#head(name, help, 'histogram');
    for (const [labels, h] of series) {
      let cumulative = 0;
      h.bounds.forEach((le, i) => {
        cumulative += h.buckets[i]!;
        this.#lines.push(`${name}_bucket${render({ ...labels, le: String(le) })} ${cumulative}`);
      });
      this.#lines.push(`${name}_bucket${render({ ...labels, le: '+Inf' })} ${h.count}`);
      this.#lines.push(`${name}_sum${render(labels)} ${h.sum}`);
      this.#lines.push(`${name}_count${render(labels)} ${h.count}`);
    }
    return this;
  }

  toString(): string {
    return `${this.#lines.join('\n')}\n`;
  }

  #metric(name: string, help: string, type: string, samples: Iterable<readonly [Labels, number]>): this {
    this.#head(name, help, type);
    for (const [labels, value] of samples) this.#lines.push(`${name}${render(labels)} ${value}`);
    return this;
  }

  #head(name: string, help: string, type: string): void {
    this.#lines.push(`# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`);
    this.#lines.push(`# TYPE ${name} ${type}`);
  }
}

function render(labels: Labels): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return pairs.length === 0 ? '' : `{${pairs.join(',')}}`;
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
