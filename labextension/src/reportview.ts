// The evaluation report of one finished training job in a main-area tab (`GET
// jobs/{id}/report`, the run's report.json): its tables (reportsections.ts), then the
// report's plots (`GET jobs/{id}/artefacts/plots/report_*.png`).
import { Widget } from '@lumino/widgets';

import { ApiError, MlaasApi } from './api';
import {
  correlations,
  efficiencies,
  folds,
  multiclass,
  note,
  overtraining,
  ranking,
  regression,
  section,
  summary
} from './reportsections';
import { IReport } from './reporttypes';

/** The report of the job `jobId`. */
export class ReportView extends Widget {
  constructor(
    private api: MlaasApi,
    readonly jobId: string
  ) {
    super();
    this.addClass('mlaas-Report');
    this.node.dataset.jobId = jobId;
    this.status = note('loading the report...', 'mlaas-Report-status');
    this.node.append(this.status);
    void this.load();
  }

  dispose(): void {
    // the plots are object URLs of downloaded blobs: free them with the view
    this.urls.forEach(url => URL.revokeObjectURL(url));
    this.urls = [];
    super.dispose();
  }

  private async load(): Promise<void> {
    let report: IReport;
    try {
      report = await this.api.jobReport(this.jobId);
    } catch (error) {
      if (this.isDisposed) {
        return;
      }
      this.status.className = 'mlaas-Report-status mlaas-Report-error mlaas-error';
      const message = (error as Error).message;
      if (!(error instanceof ApiError) || error.status !== 404) {
        this.status.textContent = `Cannot load the report: ${message}`;
      } else if (message.includes('trained before reports existed')) {
        this.status.textContent = `No report for this job: ${message}`;
      } else {
        this.status.textContent = `No report for this job (was it trained before reports existed?): ${message}`;
      }
      return;
    }
    if (this.isDisposed) {
      return;
    }
    this.status.textContent = summary(report);
    this.node.dataset.task = report.task;
    const tables = document.createElement('div');
    tables.className = 'mlaas-Report-tables';
    const sections = [
      efficiencies(report),
      overtraining(report),
      ranking(report),
      regression(report),
      multiclass(report),
      folds(report),
      correlations(report)
    ];
    tables.append(...sections.filter((s): s is HTMLElement => s !== null));
    const notes = (report.notes ?? []).map(text => note(text));
    this.node.append(...notes, tables);
    await this.showPlots(report.plots ?? {});
  }

  /** The report's plots, in the report's order; one that cannot be loaded says why. */
  private async showPlots(plots: Record<string, string>): Promise<void> {
    const entries = Object.entries(plots).filter(([, path]) => typeof path === 'string' && path);
    if (!entries.length) {
      return;
    }
    const gallery = document.createElement('div');
    gallery.className = 'mlaas-Report-plots';
    this.node.append(section('plots', 'Plots', gallery));
    const figures = entries.map(([name, path]) => {
      const figure = document.createElement('figure');
      figure.dataset.plot = name;
      const caption = document.createElement('figcaption');
      caption.textContent = `${name} (${path})`;
      figure.append(caption);
      gallery.append(figure);
      return figure;
    });
    await Promise.all(
      entries.map(async ([name, path], i) => {
        try {
          const url = await this.api.artefactUrl(this.jobId, path);
          if (this.isDisposed) {
            URL.revokeObjectURL(url);
            return;
          }
          this.urls.push(url);
          const img = document.createElement('img');
          img.alt = name;
          img.src = url;
          figures[i].prepend(img);
        } catch (error) {
          figures[i].prepend(note((error as Error).message, 'mlaas-Report-error mlaas-error'));
        }
      })
    );
  }

  private status: HTMLElement;
  private urls: string[] = [];
}
