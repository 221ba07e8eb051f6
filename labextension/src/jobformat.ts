// What the jobs panel shows of a job's record: its age, how far it got, its AUC. Pure
// functions of the record, so the panel, the model and the actions agree on them.
import { IJob, JobState } from './api';

/** Every state, in the order the filter lists them. */
export const STATES: readonly JobState[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'lost'];

/** States a job can still leave: it can be cancelled, not deleted. */
export const LIVE: ReadonlySet<string> = new Set<string>(['queued', 'running']);

export function isLive(job: IJob): boolean {
  return LIVE.has(job.state);
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

/** A finite number, else null (event fields are untyped JSON). */
export function num(value: unknown): number | null {
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

export function progressText(job: IJob): string {
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

/** The AUC a row shows: the best validation AUC (from the events the panel read,
 * `bestSeen`, else the record), else the final test AUC of a finished job. */
export function aucOf(job: IJob, bestSeen: number | null): { label: string; value: number } | null {
  const best = bestSeen ?? num(job.metrics.best_val_auc) ?? num(job.progress.val_auc);
  if (best !== null) {
    return { label: 'best val AUC', value: best };
  }
  const test = num(job.metrics.auc);
  return test !== null ? { label: 'AUC', value: test } : null;
}

/** Order of the plots: ROC first, then loss curves, then scores, then the rest. */
export function plotRank(path: string): number {
  const order = ['roc', 'loss', 'score'];
  const index = order.findIndex(word => path.includes(word));
  return index < 0 ? order.length : index;
}
