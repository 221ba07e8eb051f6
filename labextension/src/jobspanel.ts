// The jobs panel of the left sidebar: a toolbar (state filter, reload) over one row per
// job. It only renders: the jobs come from a JobsModel, what the buttons do from
// JobActions.
import { MainAreaWidget } from '@jupyterlab/apputils';
import { Event } from '@jupyterlab/services';
import { refreshIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { IJob, MlaasApi } from './api';
import { JobActions } from './jobactions';
import { STATES } from './jobformat';
import { jobRow } from './jobrow';
import { JobsModel } from './jobsmodel';

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
    this.actions = new JobActions(this.model, options.openWidget);
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
    this.status = document.createElement('div');
    this.status.className = 'mlaas-JobsPanel-status';
    this.status.hidden = true;
    this.list = document.createElement('div');
    this.list.className = 'mlaas-JobsPanel-list';
    this.node.append(bar, this.status, this.list);
    this.model.changed.connect(this.render, this);
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

  private render(): void {
    this.renderFilter();
    this.status.textContent = this.model.error;
    this.status.hidden = !this.model.error;
    const shown = this.model.shown();
    const before = new Map<string, Element>();
    this.list.querySelectorAll<HTMLElement>('.mlaas-Job').forEach(row => before.set(row.dataset.jobId!, row));
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
    return jobRow(job, this.model.bestAuc(job.id), this.actions);
  }

  private actions: JobActions;
  private filter: HTMLSelectElement;
  private status: HTMLElement;
  private list: HTMLElement;
}
