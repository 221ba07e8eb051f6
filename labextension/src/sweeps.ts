// What the jobs panel shows of the sweeps: the list of its entries (a job of its own, or
// a sweep with its trials' jobs under one row), a sweep's progress and its best trials.
// Pure functions of the records, so the panel, its rows and the actions agree on them.
import { IJob, ISweep } from './api';

/** One entry of the panel: a job of its own, or a sweep with the jobs of its trials. */
export type Entry = { kind: 'job'; job: IJob } | { kind: 'sweep'; sweep: ISweep; jobs: IJob[] };

/** A sweep is live while it may still start trials. */
export function sweepIsLive(sweep: ISweep): boolean {
  return sweep.state === 'running';
}

/**
 * The panel's entries, newest first: each sweep of `sweeps` in place of its trials'
 * jobs (a job whose sweep is not listed, e.g. a server without sweeps, stays a row of
 * its own). With a state filter, a sweep shows when it or one of its trials is in that
 * state, with the trials in that state (all of them when the sweep is).
 */
export function entries(jobs: readonly IJob[], sweeps: readonly ISweep[], filter: string): Entry[] {
  const passes = (state: string): boolean => filter === 'all' || state === filter;
  const byId = new Map(sweeps.map(s => [s.id, s]));
  const trials = new Map<string, IJob[]>(sweeps.map(s => [s.id, []]));
  const listed: Array<{ created: number; entry: Entry }> = [];
  for (const job of jobs) {
    const group = job.sweep ? trials.get(job.sweep) : undefined;
    if (group) {
      group.push(job);
    } else if (passes(job.state)) {
      listed.push({ created: job.created, entry: { kind: 'job', job } });
    }
  }
  for (const [id, group] of trials) {
    const sweep = byId.get(id)!;
    const shown = passes(sweep.state) ? group : group.filter(j => passes(j.state));
    if (passes(sweep.state) || shown.length) {
      listed.push({ created: sweep.created, entry: { kind: 'sweep', sweep, jobs: shown } });
    }
  }
  // a stable sort: jobs keep the server's order among themselves
  return listed.sort((a, b) => b.created - a.created).map(item => item.entry);
}

/** Trials that ended (succeeded, pruned, failed or cancelled), as a fraction of all. */
export function sweepFraction(sweep: ISweep): number {
  const c = sweep.counts;
  const ended = (c.done ?? 0) + (c.pruned ?? 0) + (c.failed ?? 0) + (c.cancelled ?? 0);
  return sweep.trials_total > 0 ? Math.min(1, ended / sweep.trials_total) : 0;
}

/** "5 done, 2 running, 1 pruned, 0 failed of 12". */
export function sweepProgress(sweep: ISweep): string {
  const c = sweep.counts;
  const parts = [
    `${c.done ?? 0} done`,
    `${c.running ?? 0} running`,
    `${c.pruned ?? 0} pruned`,
    `${c.failed ?? 0} failed`
  ];
  return `${parts.join(', ')} of ${sweep.trials_total}`;
}

/** The jobs of the `n` best succeeded trials, best first (by the sweep's metric and
 * direction). */
export function bestTrials(sweep: ISweep, n: number): string[] {
  const sign = sweep.direction === 'minimize' ? 1 : -1;
  return sweep.trials
    .filter(t => t.state === 'succeeded' && t.job_id && typeof t.value === 'number' && isFinite(t.value))
    .sort((a, b) => sign * (a.value! - b.value!) || a.number - b.number)
    .slice(0, n)
    .map(t => t.job_id!);
}

/** The best trial as one line: "best val_auc 0.912 (trial 3)". */
export function bestText(sweep: ISweep): string | null {
  const best = sweep.best;
  if (!best || typeof best.value !== 'number') {
    return null;
  }
  const registered = best.model ? ` → ${best.model}${best.version !== null ? ` v${best.version}` : ''}` : '';
  return `best ${sweep.metric} ${best.value.toPrecision(4)} (trial ${best.number})${registered}`;
}
