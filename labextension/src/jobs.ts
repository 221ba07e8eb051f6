// The jobs panel: every job with its state and progress, live from the server's event
// bus, polling with backoff when no event arrives.
import { Clipboard, Dialog, MainAreaWidget, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { Event } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

import { artefactUrl, cancelJob, IJob, jobLogs, listJobs } from './api';

export const JOB_SCHEMA = 'https://mlaas-jupyter.readthedocs.io/events/job';
const STATES = ['all', 'queued', 'running', 'succeeded', 'failed', 'cancelled', 'lost'];
const MAX_BACKOFF_MS = 60000;

function age(seconds: number): string {
  const s = Math.max(0, Date.now() / 1000 - seconds);
  if (s < 60) {
    return `${Math.round(s)} s`;
  }
  if (s < 3600) {
    return `${Math.round(s / 60)} min`;
  }
  return s < 86400 ? `${Math.round(s / 3600)} h` : `${Math.round(s / 86400)} d`;
}

function number(value: unknown): number | null {
  return typeof value === 'number' && isFinite(value) ? value : null;
}

/** Fraction done: epochs finished plus the running epoch's batches. */
function fraction(job: IJob): number {
  if (job.state === 'succeeded') {
    return 1;
  }
  const p = job.progress;
  const epochs = number(p.epochs);
  const epoch = number(p.epoch);
  const batch = number(p.batch);
  const batches = number(p.batches);
  if (!epochs || !epoch) {
    return 0;
  }
  const inEpoch = batch !== null && batches ? batch / batches : 1;
  const done = p.type === 'progress' ? epoch - 1 + inEpoch : epoch;
  return Math.min(1, Math.max(0, done / epochs));
}

function bestAuc(job: IJob): number | null {
  return (
    number(job.metrics.best_val_auc) ?? number(job.progress.val_auc) ?? number(job.metrics.auc)
  );
}

export interface IJobsPanelOptions {
  pollSeconds: number;
  events: Event.IManager | null;
  openWidget: (widget: MainAreaWidget) => void;
}

export class JobsPanel extends Widget {
  constructor(private options: IJobsPanelOptions) {
    super();
    this.id = 'mlaas-jobs-panel';
    this.addClass('mlaas-JobsPanel');
    this.title.caption = 'MLaaS jobs';
    const bar = document.createElement('div');
    bar.className = 'mlaas-JobsPanel-toolbar';
    const heading = document.createElement('span');
    heading.textContent = 'MLaaS jobs';
    heading.className = 'mlaas-JobsPanel-title';
    this.filter = document.createElement('select');
    this.filter.className = 'mlaas-JobsPanel-filter';
    for (const state of STATES) {
      this.filter.append(new Option(state, state));
    }
    this.filter.addEventListener('change', () => this.render());
    const refresh = document.createElement('button');
    refresh.className = 'mlaas-button';
    refresh.textContent = 'Refresh';
    refresh.addEventListener('click', () => void this.refresh());
    bar.append(heading, this.filter, refresh);
    this.status = document.createElement('div');
    this.status.className = 'mlaas-JobsPanel-status';
    this.list = document.createElement('div');
    this.list.className = 'mlaas-JobsPanel-list';
    this.node.append(bar, this.status, this.list);
    options.events?.stream.connect(this.onEvent, this);
    void this.poll();
  }

  set pollSeconds(value: number) {
    this.options.pollSeconds = value;
  }

  dispose(): void {
    window.clearTimeout(this.timer);
    this.options.events?.stream.disconnect(this.onEvent, this);
    super.dispose();
  }

  /** Reload every job from the server (the state after a page reload comes from here). */
  async refresh(): Promise<void> {
    try {
      const reply = await listJobs();
      this.jobs = reply.jobs;
      this.failures = 0;
      this.status.textContent = '';
    } catch (error) {
      this.failures += 1;
      this.status.textContent = `cannot reach the mlaas API: ${(error as Error).message}`;
    }
    this.render();
  }

  private async poll(): Promise<void> {
    await this.refresh();
    const live = this.jobs.some(j => j.state === 'queued' || j.state === 'running');
    // events keep a live list fresh; polling stays as a fallback, slower when idle and
    // backing off while the server does not answer
    let delay = this.options.pollSeconds * 1000 * (live ? 1 : 3);
    if (this.failures) {
      delay = Math.min(MAX_BACKOFF_MS, delay * 2 ** this.failures);
    }
    this.timer = window.setTimeout(() => void this.poll(), delay);
  }

  private onEvent(_: Event.IManager, event: Event.Emission): void {
    if (event.schema_id !== JOB_SCHEMA) {
      return;
    }
    // coalesce bursts of events into one reload
    if (this.pending === null) {
      this.pending = window.setTimeout(() => {
        this.pending = null;
        void this.refresh();
      }, 250);
    }
  }

  private render(): void {
    const wanted = this.filter.value;
    const shown = this.jobs.filter(j => wanted === 'all' || j.state === wanted);
    this.list.replaceChildren();
    if (!shown.length) {
      const empty = document.createElement('div');
      empty.className = 'mlaas-JobsPanel-empty';
      empty.textContent = this.jobs.length ? `no ${wanted} jobs` : 'no jobs yet';
      this.list.append(empty);
      return;
    }
    for (const job of shown) {
      this.list.append(this.row(job));
    }
  }

  private row(job: IJob): HTMLElement {
    const row = document.createElement('div');
    row.className = 'mlaas-Job';
    row.dataset.jobId = job.id;
    row.dataset.state = job.state;
    const head = document.createElement('div');
    head.className = 'mlaas-Job-head';
    const name = document.createElement('span');
    name.className = 'mlaas-Job-name';
    name.textContent = job.name || job.id;
    name.title = `${job.id} (${job.executor})`;
    const state = document.createElement('span');
    state.className = `mlaas-Job-state mlaas-state-${job.state}`;
    state.textContent = job.state;
    head.append(name, state);
    const bar = document.createElement('div');
    bar.className = 'mlaas-Job-progress';
    const fill = document.createElement('div');
    fill.style.width = `${Math.round(fraction(job) * 100)}%`;
    bar.append(fill);
    const facts = document.createElement('div');
    facts.className = 'mlaas-Job-facts';
    const parts = [age(job.created) + ' ago', job.executor];
    const rate = number(job.progress.events_per_s);
    if (rate !== null && job.state === 'running') {
      parts.push(`${Math.round(rate).toLocaleString()} events/s`);
    }
    const auc = bestAuc(job);
    if (auc !== null) {
      parts.push(`AUC ${auc.toFixed(3)}`);
    }
    facts.textContent = parts.join(' · ');
    const actions = document.createElement('div');
    actions.className = 'mlaas-Job-actions';
    const button = (label: string, action: () => void, enabled = true): void => {
      const b = document.createElement('button');
      b.className = 'mlaas-button';
      b.textContent = label;
      b.disabled = !enabled;
      b.addEventListener('click', action);
      actions.append(b);
    };
    const live = job.state === 'queued' || job.state === 'running';
    button('Cancel', () => void this.cancel(job), live);
    button('Logs', () => void this.openLogs(job));
    button('Plots', () => void this.openPlots(job), job.state === 'succeeded');
    button('Copy bundle path', () => Clipboard.copyToSystem(job.bundle || ''), !!job.bundle);
    row.append(head, bar, facts, actions);
    if (job.error) {
      const error = document.createElement('div');
      error.className = 'mlaas-Job-error';
      error.textContent = job.error;
      row.append(error);
    }
    return row;
  }

  private async cancel(job: IJob): Promise<void> {
    const answer = await showDialog({
      title: 'Cancel job?',
      body: `Cancel ${job.name || job.id}? Its checkpoints are kept; it can be resubmitted.`,
      buttons: [Dialog.cancelButton({ label: 'Keep running' }), Dialog.warnButton({ label: 'Cancel job' })]
    });
    if (!answer.button.accept) {
      return;
    }
    try {
      await cancelJob(job.id);
    } catch (error) {
      await showErrorMessage('Cannot cancel the job', error as Error);
    }
    await this.refresh();
  }

  private async openLogs(job: IJob): Promise<void> {
    const content = new Widget();
    content.addClass('mlaas-Logs');
    const pre = document.createElement('pre');
    pre.textContent = 'loading...';
    content.node.append(pre);
    const widget = new MainAreaWidget({ content });
    widget.title.label = `Logs: ${job.name || job.id}`;
    this.options.openWidget(widget);
    try {
      pre.textContent = (await jobLogs(job.id)) || '(nothing printed yet)';
    } catch (error) {
      pre.textContent = (error as Error).message;
    }
  }

  private async openPlots(job: IJob): Promise<void> {
    const content = new Widget();
    content.addClass('mlaas-Plots');
    const widget = new MainAreaWidget({ content });
    widget.title.label = `Plots: ${job.name || job.id}`;
    this.options.openWidget(widget);
    for (const plot of ['roc', 'loss', 'scores']) {
      try {
        const img = document.createElement('img');
        img.alt = plot;
        img.src = await artefactUrl(job.id, `plots/${plot}.png`);
        content.node.append(img);
      } catch {
        // a BDT has no loss curve: show what exists
      }
    }
  }

  private filter: HTMLSelectElement;
  private status: HTMLElement;
  private list: HTMLElement;
  private jobs: IJob[] = [];
  private failures = 0;
  private timer = 0;
  private pending: number | null = null;
}
