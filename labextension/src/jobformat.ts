// What the jobs panel shows of a job's record: its age, how far it got, its AUC, its
// physics metrics. Pure functions of the record, so the panel, the model and the
// actions agree on them.
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

/** Three significant digits, whole numbers with separators from 100 on (as the
 * notebook's monitor writes them). */
export function count(value: number): string {
  if (Math.abs(value) >= 100) {
    return Math.round(value).toLocaleString('en-US');
  }
  return String(Number(value.toPrecision(3)));
}

/** The physics metrics of a finished classifier, one line and its longer tooltip:
 * weighted AUC, background rejection at 50% and 90% signal efficiency, the best cut
 * with its Asimov Z and expected yields, the luminosity; null when it has none. */
export function physicsOf(job: IJob): { text: string; title: string } | null {
  const m = job.metrics;
  const text: string[] = [];
  const title: string[] = [];
  const auc = num(m.auc_weighted);
  if (auc !== null) {
    text.push(`weighted AUC ${auc.toFixed(3)}`);
    title.push(`ROC AUC with each event weighted by its expected yield: ${auc.toFixed(4)}`);
  }
  if ('rejection_at_50' in m || 'rejection_at_90' in m) {
    const at = ([50, 90] as const).map(eff => {
      const r = num(m[`rejection_at_${eff}`]);
      return `${r === null ? 'n/a' : count(r)} @ ${eff}%`;
    });
    text.push(`rejection ${at.join(', ')}`);
    title.push(`background rejection 1/εb at signal efficiency ${at.join(', ')} (n/a: no background left)`);
  }
  const cut = (m.best_cut ?? null) as Record<string, unknown> | null;
  const z = num(cut?.significance);
  if (cut && z !== null) {
    const [score, s, b] = [num(cut.score) ?? 0, num(cut.signal) ?? 0, num(cut.background) ?? 0];
    text.push(`best cut ≥ ${score.toFixed(3)}: Z ${z.toFixed(2)} (s ${count(s)}, b ${count(b)})`);
    title.push(
      `best cut: score ≥ ${score.toFixed(3)} keeps ${count(s)} signal and ${count(b)} background` +
        ` events, Asimov Z ${z.toFixed(2)}`
    );
  }
  const lumi = num(m.luminosity);
  if (text.length && lumi !== null) {
    text.push(`${count(lumi / 1000)} fb⁻¹`);
    title.push(`expected at ${count(lumi / 1000)} fb⁻¹`);
  }
  return text.length ? { text: text.join(' · '), title: title.join('\n') } : null;
}

/** Order of the plots: ROC first, then rejection, loss curves, scores, the rest. */
export function plotRank(path: string): number {
  const order = ['roc', 'rejection', 'loss', 'score'];
  const index = order.findIndex(word => path.includes(word));
  return index < 0 ? order.length : index;
}
