// One job of the jobs panel as a row: a checkbox to compare it (finished training jobs),
// name and state, a progress bar, the facts (age, executor, epoch, rate, AUC, physics
// metrics), the action buttons (Report: finished training jobs) and the error. Rows are
// built whole and compared by their HTML, so a row only changes in the page when its
// content does.
import { IJob } from './api';
import { age, aucOf, fraction, isLive, num, physicsOf, progressText } from './jobformat';

/** What the row's buttons do. */
export interface IJobRowActions {
  cancel(job: IJob): void;
  /** Runs a lost job again, the same job, from its last checkpoint. */
  resume(job: IJob): void;
  remove(job: IJob): void;
  openLogs(job: IJob): void;
  openPlots(job: IJob): void;
  /** Opens the evaluation report of a finished training job. */
  openReport(job: IJob): void;
  copyBundlePath(job: IJob): void;
  /** The job's compare checkbox was (un)ticked. */
  select(job: IJob, selected: boolean): void;
}

/** Jobs that can be compared: finished training jobs (their run folder has curves). */
export function isComparable(job: IJob): boolean {
  return job.state === 'succeeded' && job.kind !== 'predict' && !!job.run_dir;
}

export function element(tag: string, className: string, text?: string, title?: string): HTMLElement {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) {
    node.textContent = text;
  }
  if (title) {
    node.title = title;
  }
  return node;
}

function progressBar(job: IJob): HTMLElement {
  const done = Math.round(fraction(job) * 100);
  const bar = element('div', 'mlaas-Job-progress', undefined, progressText(job));
  bar.setAttribute('role', 'progressbar');
  bar.setAttribute('aria-valuenow', String(done));
  const fill = element('div', `mlaas-Job-progress-fill mlaas-fill-${job.state}`);
  fill.style.width = `${done}%`;
  bar.append(fill);
  return bar;
}

function facts(job: IJob, bestAuc: number | null): HTMLElement {
  const node = element('div', 'mlaas-Job-facts');
  const fact = (cls: string, text: string, title?: string): void => {
    node.append(element('span', cls, text, title));
  };
  fact('mlaas-Job-age', age(job.created), new Date(job.created * 1000).toLocaleString());
  fact('mlaas-Job-executor', job.executor + (job.kernel_name ? `:${job.kernel_name}` : ''));
  if (isLive(job) && num(job.progress.epoch) !== null) {
    fact('mlaas-Job-epoch', progressText(job));
  }
  const rate = num(job.progress.events_per_s);
  if (rate !== null && job.state === 'running') {
    fact('mlaas-Job-rate', `${Math.round(rate).toLocaleString()} events/s`);
  }
  const auc = aucOf(job, bestAuc);
  if (auc) {
    fact('mlaas-Job-auc', `${auc.label} ${auc.value.toFixed(3)}`);
  }
  const physics = isLive(job) ? null : physicsOf(job);
  if (physics) {
    fact('mlaas-Job-physics', physics.text, physics.title);
  }
  return node;
}

function buttons(job: IJob, actions: IJobRowActions): HTMLElement {
  const node = element('div', 'mlaas-Job-actions');
  const button = (label: string, action: () => void, enabled: boolean, title: string): void => {
    const b = element('button', 'mlaas-button', label, title) as HTMLButtonElement;
    // the tests and the styles select on data-action: "copy-bundle-path" etc.
    b.dataset.action = label.toLowerCase().replace(/ /g, '-');
    b.disabled = !enabled;
    b.addEventListener('click', action);
    node.append(b);
  };
  const live = isLive(job);
  button('Cancel', () => actions.cancel(job), live, 'Cancel the job (asks first)');
  if (job.state === 'lost' && !job.sweep) {
    // a sweep's lost trials come back with their sweep (POST sweeps/{id}/resume)
    button('Resume', () => actions.resume(job), true, 'Run the job again from its last checkpoint, as the same job');
  }
  button('Logs', () => actions.openLogs(job), true, 'Open what the job printed');
  button('Plots', () => actions.openPlots(job), !!job.run_dir && job.state !== 'queued', 'ROC, rejection, loss curves, scores');
  if (isComparable(job)) {
    const what = 'Overtraining check, variable ranking, correlations, efficiencies';
    button('Report', () => actions.openReport(job), true, what);
  }
  button('Copy bundle path', () => actions.copyBundlePath(job), !!job.bundle, job.bundle || 'no bundle (yet)');
  button(
    'Delete',
    () => actions.remove(job),
    !live,
    live ? 'Cancel the job first' : 'Remove the job with its events and run folder (asks first)'
  );
  return node;
}

function checkbox(job: IJob, selected: boolean, actions: IJobRowActions): HTMLElement {
  const box = element('input', 'mlaas-Job-select', undefined, 'Select to compare') as HTMLInputElement;
  box.type = 'checkbox';
  // the attribute, not only the property: rows are compared by their HTML
  box.toggleAttribute('checked', selected);
  box.checked = selected;
  box.setAttribute('aria-label', `compare ${job.name || job.id}`);
  box.addEventListener('change', () => actions.select(job, box.checked));
  return box;
}

/** The row of one job; `bestAuc` is the best validation AUC read from its events,
 * `selected` whether it is selected to compare. */
export function jobRow(job: IJob, bestAuc: number | null, actions: IJobRowActions, selected = false): HTMLElement {
  const row = element('div', 'mlaas-Job');
  row.dataset.jobId = job.id;
  row.dataset.state = job.state;
  const head = element('div', 'mlaas-Job-head');
  if (isComparable(job)) {
    head.append(checkbox(job, selected, actions));
  }
  const name = element('span', 'mlaas-Job-name', job.name || job.id, `${job.id}${job.kind ? ` (${job.kind})` : ''}`);
  head.append(name, element('span', `mlaas-Job-state mlaas-state-${job.state}`, job.state));
  row.append(head, progressBar(job), facts(job, bestAuc), buttons(job, actions));
  if (job.error) {
    row.append(element('div', 'mlaas-Job-error', job.error));
  }
  return row;
}

/**
 * Brings the row `old` up to date with `row` in place: only the parts whose HTML differs
 * are replaced. A running job's row changes about once a second, and a click whose press
 * and release land on two different button elements is lost, so the buttons must stay
 * the same elements while they do not change.
 */
export function patchRow(old: HTMLElement, row: HTMLElement): void {
  if (old.outerHTML === row.outerHTML) {
    return;
  }
  const elementsOnly = (node: HTMLElement): boolean => node.childNodes.length === node.children.length;
  if (old.tagName !== row.tagName || !elementsOnly(old) || !elementsOnly(row)) {
    old.replaceWith(row);
    return;
  }
  for (const name of old.getAttributeNames()) {
    if (!row.hasAttribute(name)) {
      old.removeAttribute(name);
    }
  }
  for (const name of row.getAttributeNames()) {
    old.setAttribute(name, row.getAttribute(name) ?? '');
  }
  const before = Array.from(old.children);
  const after = Array.from(row.children); // moved into `old` one by one below
  after.forEach((child, i) => {
    const previous = before[i];
    if (!previous) {
      old.append(child);
    } else if (previous.outerHTML !== child.outerHTML) {
      previous.replaceWith(child);
    }
  });
  before.slice(after.length).forEach(child => child.remove());
}
