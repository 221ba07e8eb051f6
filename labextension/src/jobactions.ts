// What the buttons of a job's row do: cancel and delete (each asks first), open the logs
// or the plots in the main area, copy the bundle's path.
import { Clipboard, Dialog, MainAreaWidget, Notification, showDialog, showErrorMessage } from '@jupyterlab/apputils';

import { IJob } from './api';
import { IJobRowActions } from './jobrow';
import { JobsModel } from './jobsmodel';
import { LogView, PlotsView } from './jobviews';

export class JobActions implements IJobRowActions {
  constructor(
    private model: JobsModel,
    private openWidget: (widget: MainAreaWidget) => void
  ) {}

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

  copyBundlePath(job: IJob): void {
    Clipboard.copyToSystem(job.bundle || '');
    Notification.info(`Copied ${job.bundle}`, { autoClose: 3000 });
  }
}
