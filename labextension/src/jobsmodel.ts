// The jobs and sweeps the panel shows. The lists come from the server (so a page reload
// shows the same jobs); jupyter_server's event bus updates them live, and a Poll (backing
// off while the server does not answer, standing by while the browser tab is hidden) is
// the fallback for the events the bus misses.
import { Event } from '@jupyterlab/services';
import { IPoll, Poll, Throttler } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { ApiError, IJob, ISweep, MlaasApi } from './api';
import { applyEvent, ISeen, jobEvent, readEvents } from './jobevents';
import { isLive } from './jobformat';
import { entries, Entry, sweepIsLive } from './sweeps';

/** Longest wait between two polls while the server does not answer. */
const MAX_BACKOFF_MS = 60000;
/** While events arrive, or no job is live, polling only guards against missed events:
 * this much slower. */
const QUIET_FACTOR = 6;
/** Rows whose AUC the model follows (the first ones the filter shows). */
const FOLLOWED = 50;

export interface IJobsModelOptions {
  api: MlaasApi;
  pollSeconds: number;
  events: Event.IManager | null;
}

export class JobsModel {
  constructor(private options: IJobsModelOptions) {
    this.poll = new Poll({
      name: 'mlaas-jupyter:jobs',
      factory: () => this.load(),
      frequency: this.frequency(false),
      standby: 'when-hidden'
    });
    options.events?.stream.connect(this.onEvent, this);
  }

  /** The list changed (jobs, states, the filter or the load error): render it all. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** One job's progress or AUC changed: render its row. */
  get jobChanged(): ISignal<this, IJob> {
    return this._jobChanged;
  }

  /** The jobs as last loaded (newest first). */
  get jobs(): readonly IJob[] {
    return this._jobs;
  }

  /** The sweeps as last loaded (newest first; none from a server without sweeps). */
  get sweeps(): readonly ISweep[] {
    return this._sweeps;
  }

  /** Why the last load failed ('' after a good one). */
  get error(): string {
    return this._error;
  }

  get api(): MlaasApi {
    return this.options.api;
  }

  get pollSeconds(): number {
    return this.options.pollSeconds;
  }

  set pollSeconds(value: number) {
    this.options.pollSeconds = Math.max(1, value);
    this.poll.frequency = this.frequency(false);
  }

  /** The state the panel shows ('all' or a JobState); kept across reloads of the list. */
  get filter(): string {
    return this._filter;
  }

  set filter(value: string) {
    if (value !== this._filter) {
      this._filter = value || 'all';
      this._changed.emit();
      void this.followAuc();
    }
  }

  /** The jobs the filter lets through. */
  shown(): IJob[] {
    return this._jobs.filter(j => this._filter === 'all' || j.state === this._filter);
  }

  /** What the panel lists: jobs, and sweeps in place of their trials' jobs. */
  entries(): Entry[] {
    return entries(this._jobs, this._sweeps, this._filter);
  }

  /** Best validation AUC read from the job's events (null if none read yet). */
  bestAuc(id: string): number | null {
    return this.seen.get(id)?.bestAuc ?? null;
  }

  /** Reload every job from the server now (resolves once loaded or failed). */
  async refresh(): Promise<void> {
    try {
      await this.poll.refresh();
      await this.poll.tick;
    } catch {
      // disposed while loading
    }
  }

  /** Forget a job the server removed. */
  remove(id: string): void {
    this.loads += 1; // a list loading now may still hold the job: drop it
    this._jobs = this._jobs.filter(j => j.id !== id);
    this.seen.delete(id);
    this._changed.emit();
  }

  get isDisposed(): boolean {
    return this.poll.isDisposed;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.options.events?.stream.disconnect(this.onEvent, this);
    this.poll.dispose();
    this.soon.dispose();
    Signal.clearData(this);
  }

  /** The poll's frequency: `quiet` when nothing moves or the bus reports what does. */
  private frequency(quiet: boolean): IPoll.Frequency {
    const interval = this.options.pollSeconds * 1000 * (quiet ? QUIET_FACTOR : 1);
    // after a failure, Poll waits a random time between `interval` and 3 times the last
    // wait (Lumino's growth factor for `backoff: true`), at most a minute (or one interval)
    return { interval, backoff: true, max: Math.max(MAX_BACKOFF_MS, interval) };
  }

  /** The poll's factory: a rejection makes the poll back off. */
  private async load(): Promise<void> {
    const ticket = ++this.loads;
    let jobs: IJob[];
    let sweeps: ISweep[];
    try {
      [jobs, sweeps] = await Promise.all([this.options.api.listJobs().then(reply => reply.jobs), this.loadSweeps()]);
    } catch (error) {
      if (ticket === this.loads) {
        this._error = `cannot load the jobs: ${(error as Error).message}`;
        this.poll.frequency = this.frequency(false); // back off from the base interval
        this._changed.emit();
      }
      throw error;
    }
    if (ticket !== this.loads) {
      return; // a newer load started meanwhile: its list wins
    }
    this._jobs = jobs;
    this._sweeps = sweeps;
    this._error = '';
    const base = this.options.pollSeconds * 1000;
    const eventsFlow = Date.now() - this.lastEvent < 2 * base;
    // a live sweep without a live trial is between trials or ending: no job event will
    // tell, so it is polled at the base rate
    const betweenTrials = sweeps.some(s => sweepIsLive(s) && !jobs.some(j => j.sweep === s.id && isLive(j)));
    this.poll.frequency = this.frequency(!betweenTrials && (eventsFlow || !jobs.some(isLive)));
    this._changed.emit();
    void this.followAuc();
  }

  /** The sweeps; a server without them (404) is asked again only once a job names a
   * sweep, and a failure keeps the last list (the jobs still show). */
  private async loadSweeps(): Promise<ISweep[]> {
    if (this.noSweeps && !this._jobs.some(j => j.sweep)) {
      return [];
    }
    try {
      const sweeps = (await this.options.api.listSweeps()).sweeps;
      this.noSweeps = false;
      return sweeps;
    } catch (error) {
      this.noSweeps = error instanceof ApiError && error.status === 404;
      return this.noSweeps ? [] : this._sweeps;
    }
  }

  /** A job event from the server's event bus: update the job at once. */
  private onEvent(_: Event.IManager, emission: Event.Emission): void {
    const event = jobEvent(emission);
    if (!event) {
      return;
    }
    this.lastEvent = Date.now();
    const job = this._jobs.find(j => j.id === event.job_id);
    if (!job) {
      void this.soon.invoke(); // a new job: its whole record comes from the server
      return;
    }
    if (job.state !== event.state && job.sweep) {
      void this.soon.invoke(); // the sweep's counts and best trial change with its trials
    } else if (job.state !== event.state && !this.reloading.has(job.id)) {
      // a new state comes with a new bundle, metrics, error, times: reload the record
      void this.reload(job.id);
    }
    applyEvent(job, this.seen.get(job.id), event);
    this._jobChanged.emit(job);
  }

  /** One job's record from the server (after a state change). */
  private async reload(id: string): Promise<void> {
    let fresh: IJob;
    this.reloading.add(id);
    try {
      fresh = await this.options.api.getJob(id);
    } catch {
      void this.soon.invoke();
      return;
    } finally {
      this.reloading.delete(id);
    }
    const index = this._jobs.findIndex(j => j.id === id);
    if (index < 0 || this.isDisposed) {
      return;
    }
    this._jobs[index] = fresh;
    this._changed.emit();
    void this.followAuc();
  }

  /** Reads the events the model has not seen of the jobs shown, for the best validation
   * AUC (finished jobs once, running ones from where it stopped). */
  private async followAuc(): Promise<void> {
    if (this.following) {
      return;
    }
    this.following = true;
    try {
      for (const job of this.shown().slice(0, FOLLOWED)) {
        const seen = this.seen.get(job.id) ?? { seq: 0, bestAuc: null };
        if (seen.seq >= job.events || job.kind === 'predict') {
          continue;
        }
        const read = await readEvents(this.options.api, job.id, seen);
        // the record may have been replaced by a fresher one meanwhile, or removed
        const current = this._jobs.find(j => j.id === job.id);
        if (this.isDisposed || !current) {
          continue;
        }
        this.seen.set(job.id, read);
        this._jobChanged.emit(current);
      }
    } catch {
      // the next load tries again
    } finally {
      this.following = false;
    }
  }

  private poll: Poll<void, unknown, 'standby'>;
  /** One reload for a burst of events (the first one starts a short wait). */
  private soon = new Throttler(() => this.refresh(), { limit: 250, edge: 'trailing' });
  private _changed = new Signal<this, void>(this);
  private _jobChanged = new Signal<this, IJob>(this);
  private _jobs: IJob[] = [];
  private _sweeps: ISweep[] = [];
  private noSweeps = false;
  private _error = '';
  private _filter = 'all';
  private seen = new Map<string, ISeen>();
  private reloading = new Set<string>();
  private loads = 0;
  private lastEvent = 0;
  private following = false;
}
