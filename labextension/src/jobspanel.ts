// The jobs panel of the left sidebar: a toolbar (state filter, reload), a bar while jobs
// are ticked (Compare, Clear), then one row per job, and one per sweep over its trials'
// rows. It only renders: the jobs come from a JobsModel, what the user picked from a PanelSelection,
// what the buttons do from JobActions.
import { MainAreaWidget, Notification } from '@jupyterlab/apputils';
import { Event } from '@jupyterlab/services';
import { refreshIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { IJob, MlaasApi } from './api';
import { JobActions } from './jobactions';
import { STATES } from './jobformat';
import { isComparable, jobRow, patchRow } from './jobrow';
import { JobsModel } from './jobsmodel';
import { PanelSelection } from './selection';
import { sweepRow } from './sweeprow';
import { Entry } from './sweeps';

export interface IJobsPanelOptions {
  api: MlaasApi;
  pollSeconds: number;
  events: Event.IManager | null;
  openWidget: (widget: MainAreaWidget) => void;
}

export class JobsPanel extends Widget {
  constructor(options: IJobsPanelOptions) {
    super();
    this.model = new JobsModel(options);
    this.selection = new PanelSelection();
    this.actions = new JobActions(this.model, this.selection, options.openWidget);
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
    this.filter.addEventListener('change', () => (this.model.filter = this.filter.value));
    const refresh = document.createElement('button');
    refresh.className = 'mlaas-button mlaas-JobsPanel-refresh';
    refresh.title = 'Reload the jobs from the server';
    refreshIcon.element({ container: refresh, tag: 'span', elementSize: 'normal' });
    refresh.addEventListener('click', () => void this.refresh());
    bar.append(heading, this.filter, refresh);
    this.selectionBar = this.renderSelectionBar();
    this.status = document.createElement('div');
    this.status.className = 'mlaas-JobsPanel-status';
    this.status.hidden = true;
    this.list = document.createElement('div');
    this.list.className = 'mlaas-JobsPanel-list';
    this.node.append(bar, this.selectionBar, this.status, this.list);
    this.model.changed.connect(this.render, this);
    this.selection.changed.connect(this.render, this);
    this.model.jobChanged.connect((_, job) => this.renderRow(job), this);
    this.render();
  }

  readonly model: JobsModel;

  set pollSeconds(value: number) {
    this.model.pollSeconds = value;
  }

  /** The jobs as last loaded (newest first). */
  get jobs(): readonly IJob[] {
    return this.model.jobs;
  }

  /** Opens the comparison of the jobs `ids` (by default the ones ticked in the panel)
   * in a main-area tab. */
  compare(ids?: readonly string[]): void {
    const jobs = ids?.length ? ids : this.selection.jobs;
    if (jobs.length < 2) {
      Notification.warning('Tick two or more finished training jobs in the MLaaS jobs panel to compare them.', {
        autoClose: 5000
      });
      return;
    }
    this.actions.compare(jobs);
  }

  /** Opens the evaluation report of the job `id` in a main-area tab. */
  report(id: string): void {
    this.actions.openReportOf(id);
  }

  /** Reload every job from the server. */
  refresh(): Promise<void> {
    return this.model.refresh();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.model.dispose();
    super.dispose();
  }

  private renderFilter(): void {
    const jobs = this.model.jobs;
    const counts = new Map<string, number>();
    for (const job of jobs) {
      counts.set(job.state, (counts.get(job.state) ?? 0) + 1);
    }
    this.filter.replaceChildren(new Option(`all (${jobs.length})`, 'all'));
    for (const state of STATES) {
      this.filter.append(new Option(`${state} (${counts.get(state) ?? 0})`, state));
    }
    this.filter.value = this.model.filter;
  }

  /** The bar over the list while jobs are ticked: how many, Compare, Clear. */
  private renderSelectionBar(): HTMLElement {
    const node = document.createElement('div');
    node.className = 'mlaas-JobsPanel-selection';
    node.hidden = true;
    const count = document.createElement('span');
    count.className = 'mlaas-JobsPanel-selected';
    const compare = document.createElement('button');
    compare.className = 'mlaas-button mlaas-JobsPanel-compare';
    compare.dataset.action = 'compare-selected';
    compare.textContent = 'Compare';
    compare.addEventListener('click', () => this.compare());
    const clear = document.createElement('button');
    clear.className = 'mlaas-button';
    clear.dataset.action = 'clear-selection';
    clear.textContent = 'Clear';
    clear.title = 'Untick every job';
    clear.addEventListener('click', () => this.selection.clear());
    node.append(count, compare, clear);
    return node;
  }

  /** The selection bar: shown while jobs are ticked; Compare from two. */
  private renderSelection(): void {
    this.selection.keepOnly(new Set(this.model.jobs.filter(isComparable).map(j => j.id)));
    const selected = this.selection.jobs.length;
    this.selectionBar.hidden = selected === 0;
    this.selectionBar.querySelector('.mlaas-JobsPanel-selected')!.textContent =
      `${selected} job${selected === 1 ? '' : 's'} selected`;
    const compare = this.selectionBar.querySelector<HTMLButtonElement>('.mlaas-JobsPanel-compare')!;
    compare.disabled = selected < 2;
    compare.title = selected < 2 ? 'Tick one more finished training job' : `Compare the ${selected} selected jobs`;
  }

  private render(): void {
    this.renderFilter();
    this.renderSelection();
    this.status.textContent = this.model.error;
    this.status.hidden = !this.model.error;
    const shown = this.model.entries();
    const before = new Map<string, Element>();
    this.list.childNodes.forEach(node => {
      const row = node as HTMLElement;
      if (row.dataset?.jobId || row.dataset?.sweepId) {
        before.set(row.dataset.jobId ? `job:${row.dataset.jobId}` : `sweep:${row.dataset.sweepId}`, row);
      }
    });
    this.list.replaceChildren();
    if (!shown.length) {
      const empty = document.createElement('div');
      empty.className = 'mlaas-JobsPanel-empty';
      empty.textContent = this.model.jobs.length
        ? `no ${this.model.filter} jobs`
        : 'No jobs yet. Submit one with %mlaas train, TrainingStudio, the CLI or the REST API.';
      this.list.append(empty);
      return;
    }
    for (const entry of shown) {
      // an unchanged row stays as it is (no flicker, hover and focus kept)
      const row = this.entryRow(entry);
      const old = before.get(entry.kind === 'job' ? `job:${entry.job.id}` : `sweep:${entry.sweep.id}`);
      if (old instanceof HTMLElement && entry.kind === 'job') {
        patchRow(old, row);
        this.list.append(old);
      } else {
        this.list.append(old && old.outerHTML === row.outerHTML ? old : row);
      }
    }
  }

  private entryRow(entry: Entry): HTMLElement {
    if (entry.kind === 'job') {
      return this.row(entry.job);
    }
    const { sweep, jobs } = entry;
    return sweepRow(sweep, jobs, this.selection.isExpanded(sweep.id), this.actions, job => this.row(job));
  }

  private renderRow(job: IJob): void {
    if (job.sweep && this.model.sweeps.some(s => s.id === job.sweep)) {
      this.render(); // a trial's row is part of its sweep's (which keeps its other rows)
      return;
    }
    const old = this.list.querySelector(`.mlaas-Job[data-job-id="${CSS.escape(job.id)}"]`);
    const row = this.row(job);
    if (old instanceof HTMLElement) {
      patchRow(old, row);
    }
  }

  private row(job: IJob): HTMLElement {
    return jobRow(job, this.model.bestAuc(job.id), this.actions, this.selection.isSelected(job.id));
  }

  private actions: JobActions;
  private selection: PanelSelection;
  private selectionBar: HTMLElement;
  private filter: HTMLSelectElement;
  private status: HTMLElement;
  private list: HTMLElement;
}
