// The main-area views of one job: its logs (following the job while it is live) and its
// plots (the PNG artefacts of its run folder).
import { Poll } from '@lumino/polling';
import { Widget } from '@lumino/widgets';

import { ApiError, MlaasApi } from './api';
import { isLive, plotRank } from './jobformat';

/** Longest wait between two reloads of the logs while the server does not answer. */
const MAX_BACKOFF_MS = 60000;

/** The logs of one job; reloads itself while the job is live, stops when it ends. */
export class LogView extends Widget {
  constructor(
    private api: MlaasApi,
    private jobId: string,
    pollSeconds: number
  ) {
    super();
    this.addClass('mlaas-Logs');
    this.pre = document.createElement('pre');
    this.pre.textContent = 'loading...';
    this.node.append(this.pre);
    const interval = Math.max(1, pollSeconds) * 1000;
    this.poll = new Poll({
      name: `mlaas-jupyter:logs:${jobId}`,
      factory: () => this.load(),
      frequency: { interval, backoff: true, max: Math.max(MAX_BACKOFF_MS, interval) },
      standby: 'when-hidden'
    });
  }

  dispose(): void {
    this.poll.dispose();
    super.dispose();
  }

  /** The poll's factory: a rejection makes the poll back off. */
  private async load(): Promise<void> {
    let text: string;
    let live: boolean;
    try {
      const [logs, job] = await Promise.all([this.api.jobLogs(this.jobId), this.api.getJob(this.jobId)]);
      text = logs;
      live = isLive(job);
    } catch (error) {
      this.pre.textContent = (error as Error).message;
      if (error instanceof ApiError && error.status === 404) {
        void this.poll.stop(); // the job was deleted: nothing more will come
        return;
      }
      throw error;
    }
    const atEnd = this.node.scrollTop + this.node.clientHeight >= this.node.scrollHeight - 4;
    this.pre.textContent = text || '(nothing printed yet)';
    if (atEnd) {
      this.node.scrollTop = this.node.scrollHeight;
    }
    if (!live) {
      void this.poll.stop(); // the job ended: its logs are complete
    }
  }

  private pre: HTMLElement;
  private poll: Poll<void, unknown, 'standby'>;
}

/** The plots of one job (ROC first, then rejection, loss curves, scores, the rest). */
export class PlotsView extends Widget {
  constructor(
    private api: MlaasApi,
    private jobId: string
  ) {
    super();
    this.addClass('mlaas-Plots');
    this.note = document.createElement('div');
    this.note.className = 'mlaas-Plots-note';
    this.note.textContent = 'loading...';
    this.node.append(this.note);
    void this.load();
  }

  dispose(): void {
    // the images are object URLs of downloaded blobs: free them with the view
    this.urls.forEach(url => URL.revokeObjectURL(url));
    this.urls = [];
    super.dispose();
  }

  private async load(): Promise<void> {
    try {
      const listing = await this.api.listArtefacts(this.jobId);
      const pngs = listing.artefacts
        .map(a => (typeof a === 'string' ? a : a.path))
        .filter(path => path.endsWith('.png'))
        .sort((a, b) => plotRank(a) - plotRank(b) || a.localeCompare(b));
      this.note.textContent = pngs.length ? '' : 'no plots (yet)';
      for (const path of pngs) {
        const url = await this.api.artefactUrl(this.jobId, path);
        if (this.isDisposed) {
          URL.revokeObjectURL(url);
          return;
        }
        this.urls.push(url);
        const figure = document.createElement('figure');
        const img = document.createElement('img');
        img.alt = path.replace(/^.*\//, '').replace(/\.png$/, '');
        img.src = url;
        const caption = document.createElement('figcaption');
        caption.textContent = path;
        figure.append(img, caption);
        this.node.append(figure);
      }
    } catch (error) {
      this.note.textContent = (error as Error).message;
    }
  }

  private note: HTMLElement;
  private urls: string[] = [];
}
