// Every request goes through ServerConnection with the server's base URL, so the
// extension works behind JupyterHub and proxies.
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export interface IJob {
  id: string;
  name: string;
  state: string;
  executor: string;
  created: number;
  started: number | null;
  finished: number | null;
  error: string | null;
  bundle: string | null;
  run_dir: string | null;
  metrics: Record<string, unknown>;
  progress: Record<string, unknown>;
  events: number;
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
  classes: Record<string, { before: number[]; events_read: number; nonfinite: number }>;
}

const settings = ServerConnection.makeSettings();

export function apiUrl(...parts: string[]): string {
  return URLExt.join(settings.baseUrl, 'mlaas', 'api', ...parts);
}

/** Calls the mlaas REST API; a non-2xx reply throws with the server's message. */
export async function request<T>(path: string, init: RequestInit = {}): Promise<T> {
  const response = await ServerConnection.makeRequest(apiUrl(path), init, settings);
  if (!response.ok) {
    let message = response.statusText;
    try {
      const body = await response.json();
      message = body.message || body.reason || message;
    } catch {
      // not JSON: keep the status text
    }
    throw new Error(`${init.method || 'GET'} ${path}: ${response.status} ${message}`);
  }
  const kind = response.headers.get('Content-Type') || '';
  return (kind.includes('json') ? response.json() : response.text()) as Promise<T>;
}

/** An artefact (e.g. plots/roc.png) of a job as an object URL for an <img>. */
export async function artefactUrl(jobId: string, path: string): Promise<string> {
  const url = apiUrl('jobs', encodeURIComponent(jobId), 'artefacts', path);
  const response = await ServerConnection.makeRequest(url, {}, settings);
  if (!response.ok) {
    throw new Error(`${path}: ${response.status} ${response.statusText}`);
  }
  return URL.createObjectURL(await response.blob());
}

export function listJobs(): Promise<{ jobs: IJob[] }> {
  return request('jobs');
}

export function cancelJob(id: string): Promise<IJob> {
  return request(`jobs/${encodeURIComponent(id)}`, { method: 'DELETE' });
}

export async function jobLogs(id: string): Promise<string> {
  const reply = await request<unknown>(`jobs/${encodeURIComponent(id)}/logs`);
  if (typeof reply === 'string') {
    return reply;
  }
  const body = reply as { logs?: string; text?: string };
  return body.logs ?? body.text ?? '';
}

export function listTrees(path: string): Promise<{ path: string; trees: string[] }> {
  return request(`trees?path=${encodeURIComponent(path)}`);
}

export function treeInfo(path: string, tree: string): Promise<ITreeInfo> {
  const query = `path=${encodeURIComponent(path)}&tree=${encodeURIComponent(tree)}`;
  return request(`branches?${query}`);
}

export function histogram(path: string, tree: string, branch: string): Promise<IHistogram> {
  const body = { classes: { [path]: [path] }, tree, branch, bins: 40, max_events: 200000 };
  return request('histograms', { method: 'POST', body: JSON.stringify(body) });
}
