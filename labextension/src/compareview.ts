// The comparison of several finished jobs in a main-area tab: the comparison figure
// (overlaid ROC curves, scores, loss curves: `GET compare/plot`), the table of their
// metrics and the table of what differs between their specs (`GET compare`).
import { Widget } from '@lumino/widgets';

import { IComparison, MlaasApi } from './api';
import { count } from './jobformat';

/** A metric or spec value as a table cell shows it. */
export function cellText(value: unknown): string {
  if (value === null || value === undefined) {
    return '—';
  }
  if (typeof value === 'number') {
    return isFinite(value) ? (Number.isInteger(value) ? value.toLocaleString('en-US') : count(value)) : String(value);
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** A row of a comparison table: its name (the first cell, and its data-key) and one
 * value per run. */
interface IRow {
  key: string;
  values: unknown[];
}

/** A table with a column per run (headed by its label, its job id in data-job-id). */
function table(className: string, first: string, runs: IComparison['runs'], rows: IRow[]): HTMLTableElement {
  const node = document.createElement('table');
  node.className = `mlaas-Compare-table ${className}`;
  const header = node.createTHead().insertRow();
  const th = (text: string, id?: string): void => {
    const cell = document.createElement('th');
    cell.textContent = text;
    if (id) {
      cell.dataset.jobId = id;
      cell.title = id;
    }
    header.append(cell);
  };
  th(first);
  runs.forEach(run => th(run.label || run.id, run.id));
  const body = node.createTBody();
  for (const { key, values } of rows) {
    const row = body.insertRow();
    row.dataset.key = key;
    row.insertCell().textContent = key;
    values.forEach(value => (row.insertCell().textContent = cellText(value)));
  }
  return node;
}

function section(title: string, ...content: HTMLElement[]): HTMLElement {
  const node = document.createElement('section');
  node.className = 'mlaas-Compare-section';
  const heading = document.createElement('h3');
  heading.className = 'mlaas-Compare-heading';
  heading.textContent = title;
  node.append(heading, ...content);
  return node;
}

/** The comparison of the jobs `ids` (two or more finished training jobs). */
export class CompareView extends Widget {
  constructor(
    private api: MlaasApi,
    readonly ids: readonly string[]
  ) {
    super();
    this.addClass('mlaas-Compare');
    this.note = document.createElement('div');
    this.note.className = 'mlaas-Compare-note';
    this.note.textContent = `comparing ${ids.length} jobs...`;
    this.figure = document.createElement('figure');
    this.figure.className = 'mlaas-Compare-figure';
    this.tables = document.createElement('div');
    this.tables.className = 'mlaas-Compare-tables';
    this.node.append(this.note, this.tables, this.figure);
    void this.load();
  }

  dispose(): void {
    // the figure is an object URL of a downloaded blob: free it with the view
    if (this.url) {
      URL.revokeObjectURL(this.url);
      this.url = '';
    }
    super.dispose();
  }

  /** The tables and the figure load side by side; either may fail alone (a 409 of a
   * job not finished fails both, with the server's message). */
  private async load(): Promise<void> {
    const [comparison, figure] = await Promise.allSettled([
      this.api.compare(this.ids),
      this.api.comparePlotUrl(this.ids)
    ]);
    if (this.isDisposed) {
      if (figure.status === 'fulfilled') {
        URL.revokeObjectURL(figure.value);
      }
      return;
    }
    if (comparison.status === 'fulfilled') {
      this.note.textContent = '';
      this.showTables(comparison.value);
    } else {
      this.showError(this.note, `Cannot compare the jobs: ${(comparison.reason as Error).message}`);
    }
    if (figure.status === 'fulfilled') {
      this.url = figure.value;
      const img = document.createElement('img');
      img.alt = 'comparison';
      img.src = this.url;
      this.figure.append(img);
    } else if (comparison.status === 'fulfilled') {
      this.showError(this.figure, `No comparison figure: ${(figure.reason as Error).message}`);
    }
  }

  private showError(node: HTMLElement, message: string): void {
    const error = document.createElement('div');
    error.className = 'mlaas-Compare-error mlaas-error';
    error.textContent = message;
    node.replaceChildren(error);
  }

  private showTables(comparison: IComparison): void {
    const runs = comparison.runs;
    const metrics: IRow[] = [
      { key: 'model', values: runs.map(run => run.model) },
      ...comparison.metrics.map(name => ({ key: name, values: runs.map(run => run.metrics[name]) }))
    ];
    this.tables.append(section('Metrics', table('mlaas-Compare-metrics', 'metric', runs, metrics)));
    if (comparison.differences.length) {
      const fields = comparison.differences.map(d => ({ key: d.field, values: d.text ?? d.values }));
      this.tables.append(section('What differs', table('mlaas-Compare-differences', 'spec field', runs, fields)));
    } else {
      const same = document.createElement('div');
      same.className = 'mlaas-Compare-note';
      same.textContent = 'The specs do not differ (branches, cuts, model and parameters are the same).';
      this.tables.append(section('What differs', same));
    }
  }

  private note: HTMLElement;
  private figure: HTMLElement;
  private tables: HTMLElement;
  private url = '';
}
