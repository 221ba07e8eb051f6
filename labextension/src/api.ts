// The mlaas REST API (`{base_url}mlaas/api/`, see mlaas_jupyter/web/openapi.json).
// Every request goes through ServerConnection.makeRequest with the lab's own server
// settings (base URL, token, XSRF cookie), so the extension works behind JupyterHub
// and proxies.
import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { IReport } from './reporttypes';

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'lost';

/** A job as `GET mlaas/api/jobs` returns it (the job object of web/openapi.json). */
export interface IJob {
  id: string;
  name: string;
  state: JobState;
  executor: string;
  kind?: string;
  kernel_name?: string | null;
  created: number;
  started: number | null;
  finished: number | null;
  error: string | null;
  bundle: string | null;
  run_dir: string | null;
  spec?: Record<string, any>;
  metrics: Record<string, unknown>;
  /** The last `progress` or `epoch` event, with its `type`. */
  progress: Record<string, unknown>;
  /** How many events the job has emitted so far. */
  events: number;
  /** The sweep the job is a trial of (null or absent: a job of its own). */
  sweep?: string | null;
}

/** One event of a job (`GET jobs/{id}/events`: the event's fields are flattened). */
export interface IJobEvent {
  job_id: string;
  seq: number;
  time: number;
  type: string;
  [field: string]: unknown;
}

export interface IBranch {
  name: string;
  type: string;
  kind: string;
  dtype?: string;
  reason?: string;
}

export interface ITreeInfo {
  file: string;
  name: string;
  entries: number;
  branches: IBranch[];
}

export interface IHistogram {
  edges: number[];
  truncated?: boolean;
  max_events?: number;
  classes: Record<string, { before: number[]; after?: number[]; events_read: number; nonfinite: number }>;
}

export type SweepState = 'running' | 'succeeded' | 'failed' | 'cancelled' | 'lost';
export type TrialState = 'queued' | 'running' | 'succeeded' | 'pruned' | 'failed' | 'cancelled' | 'lost';

/** One trial of a sweep: the job that ran it, its parameters and its metric. */
export interface ITrial {
  number: number;
  job_id: string | null;
  params: Record<string, unknown>;
  state: TrialState;
  value: number | null;
  epoch: number | null;
}

/** A sweep as `GET mlaas/api/sweeps` lists it (the sweep record of web/openapi.json). */
export interface ISweep {
  id: string;
  name: string;
  state: SweepState;
  created: number;
  finished: number | null;
  metric: string;
  direction: 'maximize' | 'minimize';
  sampler: string;
  trials_total: number;
  parallel: number;
  trials: ITrial[];
  counts: Record<'done' | 'running' | 'queued' | 'pruned' | 'failed' | 'cancelled', number>;
  best: { number: number; job_id: string | null; value: number; model: string | null; version: number | null } | null;
  error: string | null;
}

/** One job of a comparison (`GET mlaas/api/compare`); its curves stay with the figure. */
export interface IComparedRun {
  id: string;
  label: string;
  run_dir: string | null;
  model: string | null;
  metrics: Record<string, unknown>;
}

/** What `GET mlaas/api/compare?jobs=...` answers: the runs, the metric names in table
 * order, and the spec fields whose values differ between the runs. */
export interface IComparison {
  runs: IComparedRun[];
  metrics: string[];
  /** `text`: each run's value in words (a list of names as what it adds and removes
   * relative to the first run's). */
  differences: Array<{ field: string; values: unknown[]; text?: string[] }>;
}

/** An error reply of the API: `{"error": reason, "detail": message}`; the message is
 * the detail, the status the HTTP one (409: the job's state forbids the operation). */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
  }
}

function isAbsolute(path: string): boolean {
  return path.startsWith('/') || /^[A-Za-z]:[\\/]/.test(path);
}

/** The server's message of an error reply, with its status: "job x is running (409)". */
async function errorMessage(response: Response): Promise<string> {
  let message = response.statusText;
  try {
    const body = await response.json();
    message = body.detail || body.message || body.error || message;
  } catch {
    // not JSON (a proxy's error page): keep the status text
  }
  return `${message} (${response.status})`;
}

export class MlaasApi {
  /**
   * @param settings the lab's server settings (app.serviceManager.serverSettings)
   * @param serverRoot the server's root_dir as the page config gives it ('' if unknown)
   */
  constructor(
    readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings(),
    readonly serverRoot: string = PageConfig.getOption('serverRoot')
  ) {}

  url(...parts: string[]): string {
    return URLExt.join(this.settings.baseUrl, 'mlaas', 'api', ...parts);
  }

  /**
   * A file browser path (relative to the server's root_dir) as the API should get it.
   *
   * The API takes relative paths from its first data root, which is root_dir unless
   * `MlaasExtension.data_roots` says otherwise: an absolute path is right in both cases
   * (the server still refuses it when it is outside every data root).
   */
  serverPath(path: string): string {
    const root = this.serverRoot.replace(/\\/g, '/').replace(/\/+$/, '');
    if (!root || !isAbsolute(root) || root.includes('~')) {
      return path;
    }
    return path ? `${root}/${path.replace(/^\/+/, '')}` : root;
  }

  /** Calls the API; a non-2xx reply throws an ApiError with the server's message. */
  async request<T>(path: string, init: RequestInit = {}): Promise<T> {
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(this.url(path), init, this.settings);
    } catch (error) {
      throw new ApiError(`cannot reach the server: ${(error as Error).message}`, 0);
    }
    if (!response.ok) {
      throw new ApiError(await errorMessage(response), response.status);
    }
    if (response.status === 204) {
      return undefined as T;
    }
    const kind = response.headers.get('Content-Type') || '';
    return (kind.includes('json') ? response.json() : response.text()) as Promise<T>;
  }

  listJobs(): Promise<{ jobs: IJob[] }> {
    return this.request('jobs');
  }

  getJob(id: string): Promise<IJob> {
    return this.request(`jobs/${encodeURIComponent(id)}`);
  }

  /** Cancels a queued or running job; its run folder stays. */
  cancelJob(id: string): Promise<IJob> {
    return this.request(`jobs/${encodeURIComponent(id)}/cancel`, { method: 'POST' });
  }

  /** Runs a lost job again, the same job, from its last checkpoint (409 unless lost). */
  resumeJob(id: string): Promise<IJob> {
    return this.request(`jobs/${encodeURIComponent(id)}/resume`, { method: 'POST' });
  }

  /** Removes a finished job with its events and run folder (409 while it is live). */
  async deleteJob(id: string): Promise<void> {
    await this.request<unknown>(`jobs/${encodeURIComponent(id)}`, { method: 'DELETE' });
  }

  jobEvents(id: string, since = 0): Promise<{ state: JobState; next: number; events: IJobEvent[] }> {
    return this.request(`jobs/${encodeURIComponent(id)}/events?since=${since}`);
  }

  async jobLogs(id: string): Promise<string> {
    const reply = await this.request<{ text?: string } | string>(`jobs/${encodeURIComponent(id)}/logs`);
    return typeof reply === 'string' ? reply : reply.text ?? '';
  }

  listArtefacts(id: string): Promise<{ artefacts: Array<string | { path: string }> }> {
    return this.request(`jobs/${encodeURIComponent(id)}/artefacts`);
  }

  /** The evaluation report of a finished training job (its report.json); 404: the run
   * has none (trained before reports existed). */
  jobReport(id: string): Promise<IReport> {
    return this.request(`jobs/${encodeURIComponent(id)}/report`);
  }

  /** An artefact (e.g. plots/roc.png) of a job as an object URL for an <img>. */
  async artefactUrl(id: string, path: string): Promise<string> {
    const parts = path.split('/').map(encodeURIComponent);
    return this.blobUrl(this.url('jobs', encodeURIComponent(id), 'artefacts', ...parts), path);
  }

  /** Downloads `url` (with the lab's credentials) into an object URL; the caller revokes
   * it. A non-2xx reply throws an ApiError with the server's message. */
  private async blobUrl(url: string, what = ''): Promise<string> {
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, {}, this.settings);
    } catch (error) {
      throw new ApiError(`cannot reach the server: ${(error as Error).message}`, 0);
    }
    if (!response.ok) {
      throw new ApiError(`${what ? `${what}: ` : ''}${await errorMessage(response)}`, response.status);
    }
    return URL.createObjectURL(await response.blob());
  }

  /** The comparison of finished jobs: their metrics and what differs in their specs. */
  compare(ids: readonly string[]): Promise<IComparison> {
    return this.request(`compare?jobs=${ids.map(encodeURIComponent).join(',')}`);
  }

  /** The comparison figure of finished jobs (a PNG) as an object URL for an <img>. */
  async comparePlotUrl(ids: readonly string[]): Promise<string> {
    return this.blobUrl(this.url('compare', 'plot') + `?jobs=${ids.map(encodeURIComponent).join(',')}`);
  }

  listSweeps(): Promise<{ sweeps: ISweep[] }> {
    return this.request('sweeps');
  }

  /** Cancels a sweep and its queued and running trials; its finished trials stay. */
  cancelSweep(id: string): Promise<ISweep> {
    return this.request(`sweeps/${encodeURIComponent(id)}/cancel`, { method: 'POST' });
  }

  listTrees(path: string): Promise<{ path: string; trees: string[] }> {
    return this.request(`trees?path=${encodeURIComponent(this.serverPath(path))}`);
  }

  treeInfo(path: string, tree: string): Promise<ITreeInfo> {
    const file = encodeURIComponent(this.serverPath(path));
    return this.request(`branches?path=${file}&tree=${encodeURIComponent(tree)}`);
  }

  histogram(path: string, tree: string, branch: string, bins = 40): Promise<IHistogram> {
    const file = this.serverPath(path);
    const body = { classes: { [file]: [file] }, tree, branch, bins, max_events: 200000 };
    return this.request('histograms', { method: 'POST', body: JSON.stringify(body) });
  }
}
