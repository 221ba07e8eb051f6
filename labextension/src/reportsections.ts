// The sections of a training run's report view, built from its report.json: the
// efficiencies, the KS overtraining check, the variable ranking, the correlation heat
// maps, the confusion matrix and one-vs-rest AUCs (multiclass), the residuals with the
// binned bias and resolution (regression) and the per-fold metrics. Pure functions of
// the report; each table cell with a number keeps it, unrounded, in data-value.
import { count } from './jobformat';
import { IRankedVariable, IReport } from './reporttypes';

type Cell = string | number | null | undefined | { text: string; value?: number | null; title?: string };

/** A number with `digits` decimals; '—' for a missing one. */
export function fixed(value: number | null | undefined, digits: number): string {
  return typeof value === 'number' && isFinite(value) ? value.toFixed(digits) : '—';
}

/** A KS p-value: three decimals, small ones as 1.2e-5. */
export function pvalue(value: number | null | undefined): string {
  if (typeof value !== 'number' || !isFinite(value)) {
    return '—';
  }
  return value !== 0 && value < 0.001 ? value.toExponential(1) : value.toFixed(3);
}

/** A fraction as a percentage with one decimal. */
export function percent(value: number | null | undefined): string {
  return typeof value === 'number' && isFinite(value) ? `${(value * 100).toFixed(1)}%` : '—';
}

function general(value: number | null | undefined): string {
  return typeof value === 'number' && isFinite(value) ? count(value) : '—';
}

/** A table: a header row, then one row per entry (its data-key the first cell's text). */
export function table(className: string, header: string[], rows: Cell[][]): HTMLTableElement {
  const node = document.createElement('table');
  node.className = `mlaas-Report-table ${className}`;
  const head = node.createTHead().insertRow();
  for (const text of header) {
    const th = document.createElement('th');
    th.textContent = text;
    head.append(th);
  }
  const body = node.createTBody();
  for (const cells of rows) {
    const row = body.insertRow();
    cells.forEach((cell, i) => {
      const td = row.insertCell();
      if (cell !== null && typeof cell === 'object') {
        td.textContent = cell.text;
        if (typeof cell.value === 'number') {
          td.dataset.value = String(cell.value);
        }
        if (cell.title) {
          td.title = cell.title;
        }
      } else if (typeof cell === 'number') {
        td.textContent = general(cell);
        td.dataset.value = String(cell);
      } else {
        td.textContent = cell ?? '—';
      }
      if (i === 0) {
        row.dataset.key = td.textContent ?? '';
      }
    });
  }
  return node;
}

export function section(key: string, title: string, ...content: Array<HTMLElement | string>): HTMLElement {
  const node = document.createElement('section');
  node.className = 'mlaas-Report-section';
  node.dataset.section = key;
  const heading = document.createElement('h3');
  heading.className = 'mlaas-Report-heading';
  heading.textContent = title;
  node.append(heading);
  for (const part of content) {
    node.append(typeof part === 'string' ? note(part) : part);
  }
  return node;
}

export function note(text: string, className = 'mlaas-Report-note'): HTMLElement {
  const node = document.createElement('div');
  node.className = className;
  node.textContent = text;
  return node;
}

/** What the run is: task, classes, the split the report is made on, events per split. */
export function summary(report: IReport): string {
  const parts = [report.task === 'regression' ? 'regression' : `${report.task} classification`];
  if (report.classes?.length) {
    parts.push(`classes: ${report.classes.join(', ')}${report.signal ? ` (signal: ${report.signal})` : ''}`);
  }
  const events = Object.entries(report.events ?? {}).map(([split, n]) => `${general(n)} ${split}`);
  if (events.length) {
    parts.push(`events: ${events.join(', ')}`);
  }
  if (report.split) {
    parts.push(`evaluated on the ${report.split.replace(/_/g, '-')} events`);
  }
  return parts.join(' · ');
}

/** Signal efficiency at fixed background efficiencies, ROC integral, separation. */
export function efficiencies(report: IReport): HTMLElement | null {
  const e = report.efficiencies;
  if (!e) {
    return null;
  }
  const at = Object.entries(e.signal_at_background ?? {}).sort(([a], [b]) => Number(a) - Number(b));
  const rows: Cell[][] = at.map(([bkg, eff]) => [
    `εS at εB = ${percent(Number(bkg)).replace(/\.0%$/, '%')}`,
    { text: percent(eff), value: eff }
  ]);
  rows.push(['ROC integral', { text: fixed(e.roc_integral, 4), value: e.roc_integral }]);
  rows.push(['separation', { text: fixed(e.separation, 4), value: e.separation }]);
  const vs = report.task === 'multiclass' && report.signal ? ` (${report.signal} vs the rest)` : '';
  return section('efficiencies', `Efficiencies${vs}`, table('mlaas-Report-efficiencies', ['', 'value'], rows));
}

/** The KS test of the classes' scores on training against test events; flagged rows
 * (p below the threshold) are highlighted. */
export function overtraining(report: IReport): HTMLElement | null {
  const o = report.overtraining;
  if (!o) {
    return null;
  }
  const names = Object.keys(o.classes);
  const rows: Cell[][] = names.map(name => {
    const ks = o.classes[name];
    return [
      name,
      { text: fixed(ks.ks_statistic, 3), value: ks.ks_statistic },
      { text: pvalue(ks.ks_pvalue), value: ks.ks_pvalue },
      ks.flagged ? 'overtrained?' : 'ok'
    ];
  });
  const node = table('mlaas-Report-overtraining', ['class', 'KS statistic', 'KS p-value', 'check'], rows);
  node.querySelectorAll('tbody tr').forEach((row, i) => {
    const flagged = o.classes[names[i]].flagged;
    (row as HTMLElement).dataset.flagged = String(flagged);
    row.classList.toggle('mlaas-Report-flagged', flagged);
  });
  const verdict = o.flagged.length
    ? `p < ${o.threshold}: ${o.flagged.join(', ')} flagged — the scores on training and test events differ`
    : `no class below p = ${o.threshold}: training and test scores agree`;
  const what = o.score || (report.task === 'regression' ? 'predictions' : 'scores');
  const title = `Overtraining check (Kolmogorov–Smirnov, training vs test ${what})`;
  const verdictClass = o.flagged.length ? 'mlaas-Report-verdict mlaas-error' : 'mlaas-Report-verdict';
  return section('overtraining', title, node, note(verdict, verdictClass));
}

function rankingRows(entries: IRankedVariable[], withKind: boolean): Cell[][] {
  return [...entries]
    .sort((a, b) => (b.importance ?? -Infinity) - (a.importance ?? -Infinity))
    .map(v => {
      const cells: Cell[] = [v.name];
      if (withKind) {
        cells.push(v.kind ?? '');
      }
      cells.push({ text: fixed(v.importance, 4), value: v.importance }, { text: fixed(v.std, 4), value: v.std });
      return cells;
    });
}

/** Permutation importance per input variable (most important first), per column of
 * the jagged ones, and the BDT's own split gains when it has them. */
export function ranking(report: IReport): HTMLElement | null {
  const r = report.ranking;
  if (!r) {
    return null;
  }
  const metric = r.metric.toUpperCase();
  const parts: Array<HTMLElement | string> = [
    `drop of the ${metric} (baseline ${fixed(r.baseline, 4)}) when a variable's values are shuffled across ` +
      (r.events ? `${general(r.events)} events` : 'events') +
      (r.repeats ? `, mean and std of ${r.repeats} permutations` : ''),
    table('mlaas-Report-ranking', ['variable', 'kind', `Δ${metric}`, '± std'], rankingRows(r.variables, true))
  ];
  if (r.columns?.length && r.columns.length > r.variables.length) {
    const details = document.createElement('details');
    const label = document.createElement('summary');
    label.textContent = `per column (${r.columns.length})`;
    const columns = rankingRows(r.columns, false);
    details.append(label, table('mlaas-Report-columns', ['column', `Δ${metric}`, '± std'], columns));
    parts.push(details);
  }
  if (r.native?.length) {
    const rows: Cell[][] = [...r.native]
      .sort((a, b) => (b.importance ?? 0) - (a.importance ?? 0))
      .map(v => [v.name, { text: fixed(v.importance, 4), value: v.importance }]);
    parts.push(table('mlaas-Report-native', ['column', 'split gain'], rows));
  }
  return section('ranking', 'Variable ranking', ...parts);
}

/** A square heat map: cells shaded by |value| in the theme's brand (positive) or error
 * (negative) colour. */
function heatmap(
  className: string,
  labels: string[],
  columns: string[],
  values: Array<Array<number | null>>,
  digits: number,
  titles?: number[][]
): HTMLTableElement {
  const node = document.createElement('table');
  node.className = `mlaas-Report-heat ${className}`;
  const head = node.createTHead().insertRow();
  head.append(document.createElement('th'));
  for (const label of columns) {
    const th = document.createElement('th');
    th.textContent = label;
    th.title = label;
    head.append(th);
  }
  const body = node.createTBody();
  labels.forEach((label, i) => {
    const row = body.insertRow();
    row.dataset.key = label;
    const th = document.createElement('th');
    th.textContent = label;
    row.append(th);
    (values[i] ?? []).forEach((value, j) => {
      const td = row.insertCell();
      if (typeof value !== 'number' || !isFinite(value)) {
        td.textContent = '—';
        return;
      }
      td.textContent = value.toFixed(digits).replace(/^-(0\.0*)$/, '$1'); // no -0.00
      td.dataset.value = String(value);
      td.className = value < 0 ? 'mlaas-neg' : 'mlaas-pos';
      const strength = Math.min(1, Math.abs(value));
      td.style.setProperty('--mlaas-heat', `${Math.round(strength * 85)}%`);
      td.classList.toggle('mlaas-strong', strength > 0.55);
      td.title = `${label} / ${columns[j]}: ${value}${titles ? ` (${general(titles[i]?.[j])} events)` : ''}`;
    });
  });
  return node;
}

/** The linear correlations of the input variables, one heat map per class. */
export function correlations(report: IReport): HTMLElement | null {
  const c = report.correlations;
  if (!c || !Object.keys(c.classes ?? {}).length) {
    return null;
  }
  const maps = document.createElement('div');
  maps.className = 'mlaas-Report-maps';
  for (const [name, matrix] of Object.entries(c.classes)) {
    const figure = document.createElement('figure');
    figure.className = 'mlaas-Report-map';
    figure.dataset.class = name;
    const caption = document.createElement('figcaption');
    caption.textContent = name;
    figure.append(caption, heatmap('mlaas-Report-correlation', c.variables, c.variables, matrix, 2));
    maps.append(figure);
  }
  const parts: Array<HTMLElement | string> = [maps];
  const left = [...(c.constant ?? []), ...(c.masks ?? [])];
  if (left.length) {
    parts.push(`left out (constant or jagged masks): ${left.join(', ')}`);
  }
  return section('correlations', 'Correlations of the inputs (weighted, −1 … 1)', ...parts);
}

/** The confusion matrix (rows: true class, fractions of it) and the one-vs-rest AUCs. */
export function multiclass(report: IReport): HTMLElement | null {
  const parts: HTMLElement[] = [];
  const m = report.confusion;
  if (m) {
    parts.push(note('rows: true class, columns: predicted class (fraction of the row; weighted events on hover)'));
    parts.push(heatmap('mlaas-Report-confusion', m.classes, m.classes, m.normalised, 3, m.matrix));
  }
  const ovr = report.one_vs_rest;
  if (ovr && Object.keys(ovr).length) {
    const rows: Cell[][] = Object.entries(ovr).map(([name, c]) => [name, { text: fixed(c.auc, 4), value: c.auc }]);
    parts.push(table('mlaas-Report-one-vs-rest', ['class vs the rest', 'ROC AUC'], rows));
  }
  return parts.length ? section('confusion', 'Confusion matrix and one-vs-rest', ...parts) : null;
}

/** Residuals (prediction − target): R², MAE, mean, std, and bias and resolution in
 * bins of the target. */
export function regression(report: IReport): HTMLElement | null {
  const r = report.regression;
  if (!r) {
    return null;
  }
  const totals = table('mlaas-Report-residuals', ['', 'value'], [
    ['R²', { text: fixed(r.r2, 4), value: r.r2 }],
    ['MAE', r.mae],
    ['residual mean (bias)', r.mean],
    ['residual std (resolution)', r.std]
  ]);
  const parts: HTMLElement[] = [totals];
  if (r.binned?.length) {
    const rows: Cell[][] = r.binned.map(b => [
      `${general(b.low)} – ${general(b.high)}`,
      b.events,
      b.bias,
      b.resolution
    ]);
    parts.push(table('mlaas-Report-binned', ['target', 'events', 'bias', 'resolution'], rows));
  }
  const definitions = [r.bias_definition, r.resolution_definition].filter(Boolean).join('; ');
  if (definitions) {
    parts.push(note(definitions));
  }
  return section('regression', 'Residuals, bias and resolution', ...parts);
}

/** One row per fold of a k-fold run, a column per numeric metric. */
export function folds(report: IReport): HTMLElement | null {
  const f = report.folds;
  if (!f?.length) {
    return null;
  }
  const names: string[] = [];
  for (const fold of f) {
    for (const [name, value] of Object.entries(fold.metrics ?? {})) {
      if (typeof value === 'number' && !names.includes(name)) {
        names.push(name);
      }
    }
  }
  const rows: Cell[][] = f.map(fold => [
    `fold ${fold.fold}`,
    ...names.map(name => {
      const value = fold.metrics?.[name];
      return typeof value === 'number' ? value : null;
    })
  ]);
  return section('folds', 'Per fold', table('mlaas-Report-folds', ['', ...names], rows));
}
