// What the buttons of the jobs panel do: a job's cancel and delete (each asks first), the
// resume of a lost job, its logs, plots or report in the main area, copying its bundle's path;
// selecting jobs and comparing them in a main-area tab; a sweep's cancel (asks first) and
// the comparison of its best trials.
import { Clipboard, Dialog, MainAreaWidget, Notification, showDialog, showErrorMessage } from '@jupyterlab/apputils';

import { IJob, ISweep } from './api';
import { CompareView } from './compareview';
import { IJobRowActions } from './jobrow';
import { JobsModel } from './jobsmodel';
import { LogView, PlotsView } from './jobviews';
import { ReportView } from './reportview';
import { PanelSelection } from './selection';
import { ISweepRowActions } from './sweeprow';
import { bestTrials } from './sweeps';

export class JobActions implements IJobRowActions, ISweepRowActions {
  constructor(
    private model: JobsModel,
    private selection: PanelSelection,
    private openWidget: (widget: MainAreaWidget) => void
  ) {}

  select(job: IJob, selected: boolean): void {
    this.selection.select(job.id, selected);
  }

  toggle(sweep: ISweep): void {
    this.selection.toggle(sweep.id);
  }

  /** Opens the comparison of the jobs `ids` in a main-area tab (the same jobs: the same
   * tab). */
  compare(ids: readonly string[], label?: string): void {
    const content = new CompareView(this.model.api, ids);
    const widget = new MainAreaWidget({ content });
    widget.id = `mlaas-compare-${ids.join('-')}`;
    const names = ids.map(id => this.model.jobs.find(j => j.id === id)?.name || id);
    widget.title.label = label ?? `Compare: ${names.join(', ')}`;
    widget.title.caption = `comparison of ${names.join(', ')}`;
    widget.title.closable = true;
    this.openWidget(widget);
  }

  compareBest(sweep: ISweep, count: number): void {
    const ids = bestTrials(sweep, count);
    this.compare(ids, `Compare: best ${ids.length} of ${sweep.name || sweep.id}`);
  }

  /** `POST sweeps/{id}/cancel`, once the user confirms: its queued and running trials
   * are cancelled, its finished ones stay. */
  async cancelSweep(sweep: ISweep): Promise<void> {
    const answer = await showDialog({
      title: 'Cancel sweep?',
      body: `Cancel ${sweep.name || sweep.id} and its running trials? Its finished trials are kept.`,
      buttons: [Dialog.cancelButton({ label: 'Keep running' }), Dialog.warnButton({ label: 'Cancel sweep' })]
    });
    if (!answer.button.accept) {
      return;
    }
    try {
      await this.model.api.cancelSweep(sweep.id);
    } catch (error) {
      await showErrorMessage('Cannot cancel the sweep', error as Error);
    }
    await this.model.refresh();
  }

  /** `POST jobs/{id}/cancel`, once the user confirms. */
  async cancel(job: IJob): Promise<void> {
    const answer = await showDialog({
      title: 'Cancel job?',
      body: `Cancel ${job.name || job.id}? Its run folder and checkpoints are kept.`,
      buttons: [Dialog.cancelButton({ label: 'Keep running' }), Dialog.warnButton({ label: 'Cancel job' })]
    });
    if (!answer.button.accept) {
      return;
    }
    try {
      await this.model.api.cancelJob(job.id);
    } catch (error) {
      await showErrorMessage('Cannot cancel the job', error as Error);
    }
    await this.model.refresh();
  }

  /** `POST jobs/{id}/resume` of a lost job: the same job runs again from its last
   * checkpoint (nothing is lost by it, so it does not ask first). */
  async resume(job: IJob): Promise<void> {
    try {
      await this.model.api.resumeJob(job.id);
      Notification.info(`Resumed ${job.name || job.id}`, { autoClose: 3000 });
    } catch (error) {
      // 409: the row was out of date (resumed elsewhere, or not lost)
      await showErrorMessage('Cannot resume the job', error as Error);
    }
    await this.model.refresh();
  }

  /** `DELETE jobs/{id}` of a finished job, once the user confirms; its row goes. */
  async remove(job: IJob): Promise<void> {
    const answer = await showDialog({
      title: 'Delete job?',
      body:
        `Delete ${job.name || job.id}? Its record, events and run folder ` +
        '(logs, plots, checkpoints) are removed for good.',
      buttons: [Dialog.cancelButton({ label: 'Keep' }), Dialog.warnButton({ label: 'Delete job' })]
    });
    if (!answer.button.accept) {
      return;
    }
    try {
      await this.model.api.deleteJob(job.id);
    } catch (error) {
      // 409: the row was out of date and the job is queued or running again; 404: it is
      // already gone. Either way the list from the server shows how things stand.
      await showErrorMessage('Cannot delete the job', error as Error);
      await this.model.refresh();
      return;
    }
    this.model.remove(job.id);
    Notification.info(`Deleted ${job.name || job.id}`, { autoClose: 3000 });
  }

  openLogs(job: IJob): void {
    const content = new LogView(this.model.api, job.id, this.model.pollSeconds);
    const widget = new MainAreaWidget({ content });
    widget.id = `mlaas-logs-${job.id}`;
    widget.title.label = `Logs: ${job.name || job.id}`;
    widget.title.closable = true;
    this.openWidget(widget);
  }

  openPlots(job: IJob): void {
    const content = new PlotsView(this.model.api, job.id);
    const widget = new MainAreaWidget({ content });
    widget.title.label = `Plots: ${job.name || job.id}`;
    widget.title.closable = true;
    this.openWidget(widget);
  }

  /** The evaluation report of a finished training job (the same job: the same tab). */
  openReport(job: IJob): void {
    this.openReportOf(job.id, job.name);
  }

  openReportOf(id: string, name?: string): void {
    const content = new ReportView(this.model.api, id);
    const widget = new MainAreaWidget({ content });
    widget.id = `mlaas-report-${id}`;
    widget.title.label = `Report: ${name || this.model.jobs.find(j => j.id === id)?.name || id}`;
    widget.title.closable = true;
    this.openWidget(widget);
  }

  copyBundlePath(job: IJob): void {
    Clipboard.copyToSystem(job.bundle || '');
    Notification.info(`Copied ${job.bundle}`, { autoClose: 3000 });
  }
}
