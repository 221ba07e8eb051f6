// The job events, as jupyter_server's event bus brings them live and as
// `GET jobs/{id}/events` replays them: what they change in a job's record, and the best
// validation AUC folded from the epoch events.
import { Event } from '@jupyterlab/services';

import { IJob, IJobEvent, JobState, MlaasApi } from './api';
import { num } from './jobformat';

/** `$id` of mlaas_jupyter/web/events/job.yaml. */
export const JOB_SCHEMA = 'https://mlaas-jupyter.readthedocs.io/events/job';

/** A job event as the event bus sends it (web/events/job.yaml). */
export interface IBusEvent {
  schema_id: string;
  job_id: string;
  seq: number;
  type: string;
  state: JobState;
  data?: Record<string, unknown>;
}

/** What is known of a job's events beyond its record: how many were read (`seq`) and
 * the best validation AUC among them. */
export interface ISeen {
  seq: number;
  bestAuc: number | null;
}

/** The job event an emission of the bus carries; null for other schemas (the bus
 * carries every extension's events). */
export function jobEvent(emission: Event.Emission): IBusEvent | null {
  return emission.schema_id === JOB_SCHEMA ? (emission as unknown as IBusEvent) : null;
}

function foldAuc(seen: ISeen, type: string, value: unknown): void {
  const auc = num(value);
  if (type === 'epoch' && auc !== null) {
    seen.bestAuc = Math.max(seen.bestAuc ?? auc, auc);
  }
}

/** Brings `job`'s progress and `seen` up to a live event. A state change is not applied:
 * the bundle, metrics, error and times come with the job's record, to be reloaded. */
export function applyEvent(job: IJob, seen: ISeen | undefined, event: IBusEvent): void {
  const data = event.data ?? {};
  job.events = Math.max(job.events, event.seq);
  if (event.type === 'progress' || event.type === 'epoch') {
    job.progress = { type: event.type, ...data };
  }
  // the AUC is only trusted when every earlier event was seen (else readEvents reads them)
  if (seen && seen.seq === event.seq - 1) {
    foldAuc(seen, event.type, data.val_auc);
    seen.seq = event.seq;
  }
}

/** Reads the events of job `id` after `seen.seq` from the server into a copy of `seen`. */
export async function readEvents(api: MlaasApi, id: string, seen: ISeen): Promise<ISeen> {
  const reply = await api.jobEvents(id, seen.seq);
  const next = { ...seen };
  for (const event of reply.events as IJobEvent[]) {
    foldAuc(next, event.type, event.val_auc);
  }
  next.seq = Math.max(seen.seq, reply.next);
  return next;
}
