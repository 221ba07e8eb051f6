// The jobs panel: every job with its state and progress. The list comes from the
// server (so a page reload shows the same jobs); jupyter_server's event bus updates it
// live, and polling (with backoff while the server does not answer) is the fallback.
import { Clipboard, Dialog, MainAreaWidget, Notification, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { Event } from '@jupyterlab/services';
import { refreshIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { IJob, IJobEvent, JobState, MlaasApi } from './api';

/** `$id` of mlaas_jupyter/server/events/job.yaml. */
export const JOB_SCHEMA = 'https://mlaas-jupyter.readthedocs.io/events/job';
const STATES: JobState[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'lost'];
const LIVE = new Set<string>(['queued', 'running']);
const MAX_BACKOFF_MS = 60000;
/** While events arrive, polling only guards against missed ones: this much slower. */
const QUIET_FACTOR = 6;

/** A job event as jupyter_server's event bus sends it (server/events/job.yaml). */
interface IBusEvent {
  schema_id: string;
  job_id: string;
  seq: number;
  type: string;
  state: JobState;
  name?: string;
  executor?: string;
  time?: number;
  data?: Record<string, unknown>;
}

export function age(seconds: number, now = Date.now() / 1000): string {
  const s = Math.max(0, now - seconds);
  if (s < 60) {
    return `${Math.floor(s)} s`;
  }
  if (s < 3600) {
    return `${Math.floor(s / 60)} min`;
  }
  return s < 86400 ? `${Math.floor(s / 3600)} h` : `${Math.floor(s / 86400)} d`;
}

function num(value: unknown): number | null {
  return typeof value === 'number' && isFinite(value) ? value : null;
}

/** Epochs the job's spec asks for (progress events do not repeat it). */
function plannedEpochs(job: IJob): number | null {
  return num(job.progress.epochs) ?? num(job.spec?.training?.epochs);
}

/** Fraction done: finished epochs plus the running epoch's batches (or, for a batch
 * prediction, the events scored). */
export function fraction(job: IJob): number {
  if (job.state === 'succeeded') {
    return 1;
  }
  const p = job.progress;
  const direct = num(p.fraction);
  if (direct !== null) {
    return Math.min(1, Math.max(0, direct));
  }
  const epochs = plannedEpochs(job);
  const epoch = num(p.epoch);
  if (!epochs || !epoch) {
    return 0;
  }
  const batch = num(p.batch);
  const batches = num(p.batches);
  const done = p.type === 'progress' ? epoch - 1 + (batch !== null && batches ? batch / batches : 0) : epoch;
  return Math.min(1, Math.max(0, done / epochs));
}

function progressText(job: IJob): string {
  const p = job.progress;
  const epochs = plannedEpochs(job);
  const epoch = num(p.epoch);
  if (epoch !== null && epochs) {
    const batch = num(p.batch);
    const batches = num(p.batches);
    const inEpoch = p.type === 'progress' && batch !== null && batches ? `, batch ${batch}/${batches}` : '';
    return `epoch ${epoch}/${epochs}${inEpoch}`;
  }
  return `${Math.round(fraction(job) * 100)}%`;
}

/** What the panel knows of a job's events beyond its record: the best validation AUC. */
interface ISeen {
  seq: number;
  bestAuc: number | null;
}

export interface IJobsPanelOptions {
  api: MlaasApi;
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
    this.filter.title = 'Show the jobs in one state';
    this.filter.addEventListener('change', () => this.render());
    const refresh = document.createElement('button');
    refresh.className = 'mlaas-button mlaas-JobsPanel-refresh';
    refresh.title = 'Reload the jobs from the server';
    refreshIcon.element({ container: refresh, tag: 'span', elementSize: 'normal' });
    refresh.addEventListener('click', () => void this.refresh());
    bar.append(heading, this.filter, refresh);
    this.status = document.createElement('div');
    this.status.className = 'mlaas-JobsPanel-status';
    this.list = document.createElement('div');
    this.list.className = 'mlaas-JobsPanel-list';
    this.node.append(bar, this.status, this.list);
    this.renderFilter();
    options.events?.stream.connect(this.onEvent, this);
    void this.poll();
  }

  set pollSeconds(value: number) {
    this.options.pollSeconds = Math.max(1, value);
  }

  /** The jobs as last loaded (newest first). */
  get jobs(): readonly IJob[] {
    return this._jobs;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    window.clearTimeout(this.timer);
    window.clearTimeout(this.pending);
    this.options.events?.stream.disconnect(this.onEvent, this);
    super.dispose();
  }

  /** Reload every job from the server. */
  async refresh(): Promise<void> {
    try {
      const reply = await this.options.api.listJobs();
      this._jobs = reply.jobs;
      this.failures = 0;
      this.status.textContent = '';
      this.status.hidden = true;
    } catch (error) {
      this.failures += 1;
      this.status.textContent = `cannot load the jobs: ${(error as Error).message}`;
      this.status.hidden = false;
    }
    this.render();
    void this.followAuc();
  }

  private async poll(): Promise<void> {
    if (this.isDisposed) {
      return;
    }
    await this.refresh();
    const live = this._jobs.some(j => LIVE.has(j.state));
    let delay = this.options.pollSeconds * 1000;
    const eventsFlow = Date.now() - this.lastEvent < 2 * delay;
    if (!live || eventsFlow) {
      delay *= QUIET_FACTOR; // nothing moves, or the event bus tells us when it does
    }
    if (this.failures) {
      delay = Math.min(MAX_BACKOFF_MS, this.options.pollSeconds * 1000 * 2 ** this.failures);
    }
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => void this.poll(), delay);
  }

  /** A job event from the server's event bus: update the row at once. */
  private onEvent(_: Event.IManager, emission: Event.Emission): void {
    if (emission.schema_id !== JOB_SCHEMA) {
      return;
    }
    const event = emission as unknown as IBusEvent;
    this.lastEvent = Date.now();
    const job = this._jobs.find(j => j.id === event.job_id);
    if (!job) {
      this.refreshSoon(); // a new job: its whole record comes from the server
      return;
    }
    const data = event.data ?? {};
    if (job.state !== event.state && !this.reloading.has(job.id)) {
      // bundle, metrics, error and times come with the record: show the new state with them
      void this.reload(job.id);
    }
    job.events = Math.max(job.events, event.seq);
    if (event.type === 'progress' || event.type === 'epoch') {
      job.progress = { type: event.type, ...data };
    }
    const auc = num(data.val_auc);
    if (event.type === 'epoch' && auc !== null) {
      const seen = this.seen.get(job.id);
      // only trusted when every earlier event was seen (else followAuc fetches them)
      if (seen && seen.seq >= event.seq - 1) {
        seen.bestAuc = Math.max(seen.bestAuc ?? auc, auc);
      }
    }
    const seen = this.seen.get(job.id);
    if (seen && seen.seq === event.seq - 1) {
      seen.seq = event.seq;
    }
    this.renderRow(job);
  }

  /** One job's record from the server (after a state change). */
  private async reload(id: string): Promise<void> {
    let fresh: IJob;
    this.reloading.add(id);
    try {
      fresh = await this.options.api.getJob(id);
    } catch {
      this.refreshSoon();
      return;
    } finally {
      this.reloading.delete(id);
    }
    const index = this._jobs.findIndex(j => j.id === id);
    if (index < 0) {
      return;
    }
    this._jobs[index] = fresh;
    this.render();
    void this.followAuc();
  }

  /** One reload for a burst of events. */
  private refreshSoon(): void {
    if (!this.pending) {
      this.pending = window.setTimeout(() => {
        this.pending = 0;
        void this.refresh();
      }, 250);
    }
  }

  /** Reads the events the panel has not seen of the jobs shown, for the best validation
   * AUC (finished jobs once, running ones from where it stopped). */
  private async followAuc(): Promise<void> {
    if (this.following) {
      return;
    }
    this.following = true;
    try {
      for (const job of this.shown().slice(0, 50)) {
        const seen = this.seen.get(job.id) ?? { seq: 0, bestAuc: null };
        if (seen.seq >= job.events || job.kind === 'predict') {
          continue;
        }
        const reply = await this.options.api.jobEvents(job.id, seen.seq);
        for (const event of reply.events as IJobEvent[]) {
          const auc = num(event.val_auc);
          if (event.type === 'epoch' && auc !== null) {
            seen.bestAuc = Math.max(seen.bestAuc ?? auc, auc);
          }
        }
        seen.seq = Math.max(seen.seq, reply.next);
        this.seen.set(job.id, seen);
        this.renderRow(job);
      }
    } catch {
      // the next refresh tries again
    } finally {
      this.following = false;
    }
  }

  /** Best validation AUC seen, else the final test AUC of a finished job. */
  private auc(job: IJob): { label: string; value: number } | null {
    const best = this.seen.get(job.id)?.bestAuc ?? num(job.metrics.best_val_auc) ?? num(job.progress.val_auc);
    if (best !== null) {
      return { label: 'best val AUC', value: best };
    }
    const test = num(job.metrics.auc);
    return test !== null ? { label: 'AUC', value: test } : null;
  }

  private shown(): IJob[] {
    const wanted = this.filter.value || 'all';
    return this._jobs.filter(j => wanted === 'all' || j.state === wanted);
  }

  private renderFilter(): void {
    const current = this.filter.value || 'all';
    const counts = new Map<string, number>();
    for (const job of this._jobs) {
      counts.set(job.state, (counts.get(job.state) ?? 0) + 1);
    }
    this.filter.replaceChildren(new Option(`all (${this._jobs.length})`, 'all'));
    for (const state of STATES) {
      this.filter.append(new Option(`${state} (${counts.get(state) ?? 0})`, state));
    }
    this.filter.value = current;
  }

  private render(): void {
    this.renderFilter();
    const shown = this.shown();
    const wanted = this.filter.value;
    const before = new Map<string, Element>();
    this.list.querySelectorAll<HTMLElement>('.mlaas-Job').forEach(row => before.set(row.dataset.jobId!, row));
    this.list.replaceChildren();
    if (!shown.length) {
      const empty = document.createElement('div');
      empty.className = 'mlaas-JobsPanel-empty';
      empty.textContent = this._jobs.length
        ? `no ${wanted} jobs`
        : 'No jobs yet. Submit one with %mlaas train, TrainingStudio, the CLI or the REST API.';
      this.list.append(empty);
      return;
    }
    for (const job of shown) {
      // an unchanged row stays as it is (no flicker, hover and focus kept)
      const row = this.row(job);
      const old = before.get(job.id);
      this.list.append(old && old.outerHTML === row.outerHTML ? old : row);
    }
  }

  private renderRow(job: IJob): void {
    const old = this.list.querySelector(`.mlaas-Job[data-job-id="${CSS.escape(job.id)}"]`);
    const row = this.row(job);
    if (old && old.outerHTML !== row.outerHTML) {
      old.replaceWith(row);
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
    name.title = `${job.id}${job.kind ? ` (${job.kind})` : ''}`;
    const state = document.createElement('span');
    state.className = `mlaas-Job-state mlaas-state-${job.state}`;
    state.textContent = job.state;
    head.append(name, state);
    const bar = document.createElement('div');
    bar.className = 'mlaas-Job-progress';
    const done = fraction(job);
    bar.title = progressText(job);
    bar.setAttribute('role', 'progressbar');
    bar.setAttribute('aria-valuenow', String(Math.round(done * 100)));
    const fill = document.createElement('div');
    fill.className = `mlaas-Job-progress-fill mlaas-fill-${job.state}`;
    fill.style.width = `${Math.round(done * 100)}%`;
    bar.append(fill);
    const facts = document.createElement('div');
    facts.className = 'mlaas-Job-facts';
    const fact = (cls: string, text: string, title?: string): void => {
      const span = document.createElement('span');
      span.className = cls;
      span.textContent = text;
      if (title) {
        span.title = title;
      }
      facts.append(span);
    };
    fact('mlaas-Job-age', age(job.created), new Date(job.created * 1000).toLocaleString());
    fact('mlaas-Job-executor', job.executor + (job.kernel_name ? `:${job.kernel_name}` : ''));
    if (LIVE.has(job.state) && num(job.progress.epoch) !== null) {
      fact('mlaas-Job-epoch', progressText(job));
    }
    const rate = num(job.progress.events_per_s);
    if (rate !== null && job.state === 'running') {
      fact('mlaas-Job-rate', `${Math.round(rate).toLocaleString()} events/s`);
    }
    const auc = this.auc(job);
    if (auc) {
      fact('mlaas-Job-auc', `${auc.label} ${auc.value.toFixed(3)}`);
    }
    const actions = document.createElement('div');
    actions.className = 'mlaas-Job-actions';
    const button = (label: string, action: () => void, enabled: boolean, title: string): void => {
      const b = document.createElement('button');
      b.className = 'mlaas-button';
      b.dataset.action = label.toLowerCase().replace(/ /g, '-');
      b.textContent = label;
      b.title = title;
      b.disabled = !enabled;
      b.addEventListener('click', action);
      actions.append(b);
    };
    const live = LIVE.has(job.state);
    button('Cancel', () => void this.cancel(job), live, 'Cancel the job (asks first)');
    button('Logs', () => void this.openLogs(job), true, 'Open what the job printed');
    button('Plots', () => void this.openPlots(job), !!job.run_dir && job.state !== 'queued', 'ROC, loss curves, scores');
    button(
      'Copy bundle path',
      () => {
        Clipboard.copyToSystem(job.bundle || '');
        Notification.info(`Copied ${job.bundle}`, { autoClose: 3000 });
      },
      !!job.bundle,
      job.bundle || 'no bundle (yet)'
    );
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
      body: `Cancel ${job.name || job.id}? Its run folder and checkpoints are kept.`,
      buttons: [Dialog.cancelButton({ label: 'Keep running' }), Dialog.warnButton({ label: 'Cancel job' })]
    });
    if (!answer.button.accept) {
      return;
    }
    try {
      await this.options.api.cancelJob(job.id);
    } catch (error) {
      await showErrorMessage('Cannot cancel the job', error as Error);
    }
    await this.refresh();
  }

  private openLogs(job: IJob): void {
    const content = new LogView(this.options.api, job.id, this.options.pollSeconds);
    const widget = new MainAreaWidget({ content });
    widget.id = `mlaas-logs-${job.id}`;
    widget.title.label = `Logs: ${job.name || job.id}`;
    widget.title.closable = true;
    this.options.openWidget(widget);
  }

  private async openPlots(job: IJob): Promise<void> {
    const content = new Widget();
    content.addClass('mlaas-Plots');
    const note = document.createElement('div');
    note.className = 'mlaas-Plots-note';
    note.textContent = 'loading...';
    content.node.append(note);
    const widget = new MainAreaWidget({ content });
    widget.title.label = `Plots: ${job.name || job.id}`;
    widget.title.closable = true;
    this.options.openWidget(widget);
    try {
      const listing = await this.options.api.listArtefacts(job.id);
      const pngs = listing.artefacts
        .map(a => (typeof a === 'string' ? a : a.path))
        .filter(path => path.endsWith('.png'))
        .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
      note.textContent = pngs.length ? '' : 'no plots (yet)';
      for (const path of pngs) {
        const figure = document.createElement('figure');
        const img = document.createElement('img');
        img.alt = path.replace(/^.*\//, '').replace(/\.png$/, '');
        img.src = await this.options.api.artefactUrl(job.id, path);
        const caption = document.createElement('figcaption');
        caption.textContent = path;
        figure.append(img, caption);
        content.node.append(figure);
      }
    } catch (error) {
      note.textContent = (error as Error).message;
    }
  }

  private filter: HTMLSelectElement;
  private status: HTMLElement;
  private list: HTMLElement;
  private _jobs: IJob[] = [];
  private seen = new Map<string, ISeen>();
  private reloading = new Set<string>();
  private failures = 0;
  private timer = 0;
  private pending = 0;
  private lastEvent = 0;
  private following = false;
}

/** ROC first, then loss curves, then the rest. */
function rank(path: string): number {
  const order = ['roc', 'loss', 'score'];
  const index = order.findIndex(word => path.includes(word));
  return index < 0 ? order.length : index;
}

/** The logs of one job in the main area; reloads itself while the job runs. */
class LogView extends Widget {
  constructor(
    private api: MlaasApi,
    private jobId: string,
    private pollSeconds: number
  ) {
    super();
    this.addClass('mlaas-Logs');
    this.pre = document.createElement('pre');
    this.pre.textContent = 'loading...';
    this.node.append(this.pre);
    void this.load();
  }

  dispose(): void {
    window.clearTimeout(this.timer);
    super.dispose();
  }

  private async load(): Promise<void> {
    if (this.isDisposed) {
      return;
    }
    let live = false;
    try {
      const [text, job] = await Promise.all([this.api.jobLogs(this.jobId), this.api.getJob(this.jobId)]);
      const atEnd = this.node.scrollTop + this.node.clientHeight >= this.node.scrollHeight - 4;
      this.pre.textContent = text || '(nothing printed yet)';
      if (atEnd) {
        this.node.scrollTop = this.node.scrollHeight;
      }
      live = LIVE.has(job.state);
    } catch (error) {
      this.pre.textContent = (error as Error).message;
    }
    if (live && !this.isDisposed) {
      this.timer = window.setTimeout(() => void this.load(), this.pollSeconds * 1000);
    }
  }

  private pre: HTMLElement;
  private timer = 0;
}
