"""`SweepsService`: ``mlaas.sweeps``, hyperparameter sweeps as groups of training jobs.

A sweep's driver is an asyncio task on the core's loop. It asks Optuna (an in-memory
study, :mod:`._sweep_study`) for up to ``parallel`` trials at a time, submits each as
a job named ``"<sweep> #<n>"`` whose ``sweep`` field is the sweep's id, and follows
the jobs through the core's event listeners: each epoch's metric is reported to the
pruner (a trial it prunes is cancelled and recorded ``pruned``), and a finished job
is told to the study. A succeeded trial's value is its best validation metric over
its epochs (per direction: the epoch the model would be chosen at), or the job's
final metric of that name when it reported no epochs (a BDT). Failed trials do not
stop the sweep; it fails only when no trial succeeded. At the end the best trial's
bundle is registered as the next version of the model named after the sweep (trials
themselves are not registered). The record is written to the job store after every
change, so a client, the jobs panel or a restarted server sees it; the sweeps of a
stopped process are marked lost at startup, and :meth:`SweepsService.resume`
continues one with its remaining trials.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import re
import time
import uuid
from typing import TYPE_CHECKING, Any, Literal

from traitlets import Int
from traitlets.config import LoggingConfigurable

from ..errors import SpecError
from ..jobs._sweep_store import SweepStateError
from ..jobs.models import Job, JobEvent
from ..jobs.store import JobStateError
from ..specs.requests import JobRequest
from ..specs.sweep import SweepRequest, apply_params, check_sweep
from ..train._builtin_models import builtin_params
from ._jobs import admit
from ._sweep_run import SweepRun, best_trial, epoch_best, final_value, tell
from ._sweep_study import counts, distributions, make_study, quiet_optuna, rebuild_study

if TYPE_CHECKING:
    import optuna

    from ..inference.registry import ModelRegistry
    from ._jobs import JobsService

__all__ = ["SweepsService"]

_ENDS = {"succeeded", "failed", "cancelled", "lost"}


class SweepsService(LoggingConfigurable):
    """Submit, list, follow, cancel and delete sweeps (see the module docstring).

    Configure the pruner with ``c.SweepsService.prune_startup_trials`` and
    ``c.SweepsService.prune_warmup_epochs``.
    """

    prune_startup_trials = Int(
        2, config=True, help="Finished trials before the pruner compares a trial with them."
    )
    prune_warmup_epochs = Int(
        1, config=True, help="The first epoch at which a trial may be pruned (from 1)."
    )

    def __init__(self, jobs: JobsService, registry: ModelRegistry, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.jobs, self.registry = jobs, registry
        self.manager, self.store = jobs._manager, jobs.store
        self._runs: dict[str, SweepRun] = {}

    # -- the API -----------------------------------------------------------------------

    async def submit(self, request: SweepRequest) -> dict[str, Any]:
        """Check the spec and the parameters, record the sweep and start its driver."""
        base_request = JobRequest(
            spec=request.spec, spec_path=request.spec_path, executor=request.executor
        )
        spec = await asyncio.to_thread(self.jobs._spec_of, base_request)
        await asyncio.to_thread(admit, self.jobs.roots, spec)
        metric, direction = await asyncio.to_thread(check_sweep, request, spec, builtin_params)
        executor = request.executor or self.manager.default_executor
        if executor not in self.manager.executors:
            known = ", ".join(self.manager.executors)
            raise SpecError("executor", f"unknown executor {executor!r}; allowed values: {known}")
        default = spec.training.name or spec.model.name or "model"
        name = request.name or f"{default}-sweep"
        params = request.parsed_params
        record: dict[str, Any] = {
            "id": uuid.uuid4().hex[:12],
            "name": name,
            "state": "running",
            "created": time.time(),
            "finished": None,
            "request": request.model_dump(mode="json", by_alias=True),
            "metric": metric,
            "direction": direction,
            "sampler": request.sampler,
            "trials_total": request.trials_total,
            "parallel": request.parallel,
            "executor": executor,
            "trials": [],
            "counts": counts([]),
            "best": None,
            "error": None,
        }
        study = self._study(request, params, direction)
        run = SweepRun(record, study, distributions(params), spec.to_dict(), request)
        run.budget = request.trials_total
        self.store.create_sweep(record)
        self._start(run)
        return dict(record)

    async def resume(self, sweep_id: str) -> dict[str, Any]:
        """Continue a lost sweep with its remaining trials: a new study learns from its
        finished trials (a grid sweep runs the points it has not finished); trials
        lost with the old process stay in the record, and are run again."""
        record = self.store.get_sweep(sweep_id)
        if record["state"] != "lost" or sweep_id in self._runs:
            raise SweepStateError(
                f"sweep {sweep_id} is {record['state']}; only a lost sweep can be resumed"
            )
        request = SweepRequest.parse(record["request"])
        base_request = JobRequest(spec=request.spec, spec_path=request.spec_path)
        spec = await asyncio.to_thread(self.jobs._spec_of, base_request)
        await asyncio.to_thread(admit, self.jobs.roots, spec)
        await asyncio.to_thread(check_sweep, request, spec, builtin_params)
        params = request.parsed_params
        study = self._study(request, params, record["direction"])
        finished = rebuild_study(study, record, params, grid=request.sampler == "grid")
        record = self.store.claim_sweep(sweep_id)  # 409 when another process was quicker
        record.update(state="running", finished=None, error=None)
        run = SweepRun(record, study, distributions(params), spec.to_dict(), request)
        run.budget = max(0, record["trials_total"] - finished)
        self._save(run)
        self._start(run)
        return dict(record)

    async def list(self) -> dict[str, Any]:
        """Every sweep, newest first."""
        return {"sweeps": await asyncio.to_thread(self.store.list_sweeps)}

    async def get(self, sweep_id: str) -> dict[str, Any]:
        """One sweep's record (its trials, counts, best trial, error)."""
        return await asyncio.to_thread(self.store.get_sweep, sweep_id)

    async def cancel(self, sweep_id: str) -> dict[str, Any]:
        """Cancel a running sweep and its queued and running trials (409 once ended)."""
        record = self.store.get_sweep(sweep_id)
        if record["state"] != "running":
            raise SweepStateError(f"sweep {sweep_id} has already ended ({record['state']})")
        run = self._runs.get(sweep_id)
        if run is None:
            if not self.store.sweep_orphaned(sweep_id):
                raise SweepStateError(f"sweep {sweep_id} runs in another process; cancel it there")
            record.update(state="cancelled", finished=time.time())
            return self.store.save_sweep(record)  # nothing drives it: only its record ends
        run.cancelled = True
        await asyncio.gather(*(self._cancel_job(job_id) for job_id in list(run.flying)))
        if run.task is not None:
            await asyncio.wait({run.task})
        return self.store.get_sweep(sweep_id)

    async def delete(self, sweep_id: str) -> dict[str, Any]:
        """Remove a finished sweep's record (its trials stay as jobs); 409 while running."""
        record = await asyncio.to_thread(self.store.delete_sweep, sweep_id)
        return {"id": record["id"], "deleted": True}

    async def wait(self, sweep_id: str) -> dict[str, Any]:
        """The record once the sweep driven here has ended (for tests and scripts)."""
        run = self._runs.get(sweep_id)
        if run is not None and run.task is not None:
            await asyncio.wait({run.task})
        return self.store.get_sweep(sweep_id)

    # -- life cycle --------------------------------------------------------------------

    def recover(self) -> builtins.list[dict[str, Any]]:
        """At startup: the sweeps of a stopped process become lost (finished trials
        kept); returns them."""
        lost = self.store.mark_sweeps_interrupted()
        for record in lost:
            record["counts"] = counts(record["trials"])
            self.store.save_sweep(record)
        return lost

    async def close(self) -> None:
        """Stop the drivers: their sweeps become lost (their jobs stop with the core)."""
        for run in list(self._runs.values()):
            if run.task is not None:
                run.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await run.task
            for _, index in run.flying.values():
                run.record["trials"][index]["state"] = "lost"
            self._end(run, "lost", "the server stopped while the sweep was running")

    def on_event(self, event: JobEvent, job: Job) -> None:
        """The core's event listener: hand a trial's events to its sweep's driver."""
        run = self._runs.get(job.sweep) if job.sweep is not None else None
        if run is None or run.loop is None:
            return
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if here is run.loop:  # the job manager records events on the core's loop
            run.events.put_nowait((event, job))
        else:
            run.loop.call_soon_threadsafe(run.events.put_nowait, (event, job))

    # -- the driver --------------------------------------------------------------------

    def _study(
        self, request: SweepRequest, params: Any, direction: Literal["minimize", "maximize"]
    ) -> optuna.Study:
        return make_study(
            request.sampler,
            params,
            direction,
            request.seed,
            request.prune,
            max(0, self.prune_startup_trials),
            max(0, self.prune_warmup_epochs),
        )

    def _start(self, run: SweepRun) -> None:
        run.loop = asyncio.get_running_loop()
        self._runs[run.record["id"]] = run
        run.task = asyncio.create_task(self._drive(run), name=f"mlaas-sweep-{run.record['id']}")

    async def _drive(self, run: SweepRun) -> None:
        record = run.record
        try:
            while True:
                while (
                    not run.cancelled
                    and run.asked < run.budget
                    and len(run.flying) < record["parallel"]
                ):
                    await self._ask(run)
                if not run.flying:
                    break
                event, job = await run.events.get()
                await self._follow(run, event, job)
            await self._finish(run)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # a bug here must not leave the sweep running forever
            self.log.exception("mlaas: sweep %s failed", record["id"])
            self._end(run, "failed", f"internal error: {type(err).__name__}: {err}")
        finally:
            self._runs.pop(record["id"], None)

    async def _ask(self, run: SweepRun) -> None:
        record, request = run.record, run.request
        with quiet_optuna():
            trial = run.study.ask(run.space)
        run.asked += 1
        values = {path: trial.params[path] for path in run.space}
        entry: dict[str, Any] = {
            "number": len(record["trials"]) + 1,
            "job_id": None,
            "params": values,
            "state": "queued",
            "value": None,
            "epoch": None,
            "intermediate": {},
            "error": None,
        }
        record["trials"].append(entry)
        try:
            job = await self.manager.submit(
                apply_params(run.base, values),
                executor=record["executor"],
                kernel_name=request.kernel_name,
                name=f"{record['name']} #{entry['number']}",
                sweep=record["id"],
            )
        except Exception as err:  # e.g. the manager is stopping: this trial fails
            tell(run, trial, None, "failed")
            entry.update(state="failed", error=str(err))
        else:
            entry["job_id"] = job.id
            run.flying[job.id] = (trial, len(record["trials"]) - 1)
        self._save(run)

    async def _follow(self, run: SweepRun, event: JobEvent, job: Job) -> None:
        if job.id not in run.flying:
            return
        trial, index = run.flying[job.id]
        entry = run.record["trials"][index]
        if event.type == "epoch" and job.id not in run.pruning:  # not after the pruning
            value = event.data.get(run.record["metric"])
            epoch = event.data.get("epoch")
            if isinstance(value, int | float) and isinstance(epoch, int):
                entry["intermediate"][str(epoch)] = float(value)
                entry["epoch"] = epoch
                entry["value"] = epoch_best(run.record["direction"], entry)
                with quiet_optuna():
                    trial.report(float(value), epoch)
                    prune = run.request.prune and trial.should_prune()
                if prune and job.id not in run.pruning:
                    run.pruning.add(job.id)
                    asyncio.create_task(self._cancel_job(job.id))  # noqa: RUF006
            self._save(run)
        elif event.type == "state":
            state = str(event.data.get("state"))
            if state == "running":
                entry["state"] = "running"
                self._save(run)
            elif state in _ENDS:
                self._ended(run, job, trial, entry, state)

    def _ended(
        self, run: SweepRun, job: Job, trial: Any, entry: dict[str, Any], state: str
    ) -> None:
        run.flying.pop(job.id, None)
        if job.id in run.pruning and state in ("cancelled", "succeeded"):
            state = "pruned"  # succeeded: it ended before its cancel landed
        elif state == "succeeded":
            metric = run.record["metric"]
            value = entry["value"] if entry["intermediate"] else final_value(metric, job)
            if value is None:
                state = "failed"
                entry["error"] = f"the job reported no {run.record['metric']}"
            entry["value"] = value
        elif state in ("failed", "lost"):
            entry["error"] = job.error or state
        entry["state"] = state
        tell(run, trial, entry["value"], state)
        self._save(run)

    async def _cancel_job(self, job_id: str) -> None:
        with contextlib.suppress(JobStateError):  # it has just ended on its own
            await self.manager.cancel(job_id)

    async def _finish(self, run: SweepRun) -> None:
        record = run.record
        record["best"] = best_trial(record)
        if record["best"] is not None and run.request.register_model:
            await self._register(record)
        if run.cancelled:
            self._end(run, "cancelled", None)
        elif record["best"] is None:
            errors = [t["error"] for t in record["trials"] if t.get("error")]
            self._end(run, "failed", errors[0] if errors else "no trial succeeded")
        else:
            self._end(run, "succeeded", None)

    async def _register(self, record: dict[str, Any]) -> None:
        best = record["best"]
        bundle = self.manager.get(best["job_id"]).bundle
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", record["name"]).strip("-._")[:100] or "sweep"
        if not bundle:
            record["error"] = f"the best trial (job {best['job_id']}) has no bundle"
            return
        try:
            info = await asyncio.to_thread(self.registry.register, bundle, name)
        except Exception as err:
            self.log.warning("mlaas: cannot register the best trial of sweep %s: %s", name, err)
            record["error"] = f"cannot register the best trial's bundle: {err}"
        else:
            best.update(model=info.name, version=info.version)

    def _end(self, run: SweepRun, state: str, error: str | None) -> None:
        record = run.record
        record.update(state=state, finished=time.time())
        if error is not None:
            record["error"] = error
        self._save(run)

    def _save(self, run: SweepRun) -> None:
        run.record["counts"] = counts(run.record["trials"])
        try:
            self.store.save_sweep(run.record)
        except Exception:  # deleted meanwhile, or the store is closed
            self.log.exception("mlaas: cannot store sweep %s", run.record["id"])
