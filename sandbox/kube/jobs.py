"""Jobs: pods run to completion until ``completions`` succeeded, ``parallelism`` at a time.

The pods finish on their own (see pods.py: a run-to-completion pod succeeds after the
latency "job"); this controller counts them and marks the Job Complete. Pods never fail
here, so backoffLimit, activeDeadlineSeconds and podFailurePolicy never come into play;
ttlSecondsAfterFinished is not honoured either.
"""

from __future__ import annotations

from typing import Any

from sandbox.kube.objects import (
    Key,
    condition,
    deep,
    delete_quietly,
    is_ready,
    is_terminal,
    key_of,
    merge_conditions,
    now,
    omit_zeros,
    uid,
)
from sandbox.kube.resources import ResourceType
from sandbox.kube.workloads import WorkloadReconciler, pod_from_template


def _finished(job: dict[str, Any]) -> bool:
    for kind in ("Complete", "Failed"):
        found = condition((job.get("status") or {}).get("conditions"), kind)
        if found and found.get("status") == "True":
            return True
    return False


class Jobs(WorkloadReconciler):
    name = "jobs"

    @property
    def rt(self) -> ResourceType:
        return self.kinds.job

    def reconcile(self, key: Key) -> float | None:
        job = self.store.get(self.rt, *key)
        if job is None or _finished(job):
            return None
        spec = job["spec"]
        completions = spec.get("completions")
        completions = 1 if completions is None else int(completions)
        parallelism = spec.get("parallelism")
        parallelism = 1 if parallelism is None else int(parallelism)
        pods = self.owned_pods(job)
        succeeded = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Succeeded")
        active = [p for p in pods if not is_terminal(p)]
        if spec.get("suspend"):
            for pod in active:
                delete_quietly(self.store, self.kinds.pod, *key_of(pod))
            active = []
        else:
            missing = min(parallelism - len(active), completions - succeeded - len(active))
            for _ in range(max(missing, 0)):
                active.append(self._create_pod(job))
        self._write_status(job, active, succeeded, completions)
        return None

    def _create_pod(self, job: dict[str, Any]) -> dict[str, Any]:
        name = job["metadata"]["name"]
        job_labels = {
            "batch.kubernetes.io/controller-uid": uid(job),
            "batch.kubernetes.io/job-name": name,
            "controller-uid": uid(job),
            "job-name": name,
        }
        pod = pod_from_template(job["spec"].get("template") or {}, job, self.rt, job_labels)
        pod["metadata"]["generateName"] = f"{name}-"
        return self.store.create(self.kinds.pod, pod)

    def _write_status(
        self, job: dict[str, Any], active: list[dict], succeeded: int, completions: int
    ) -> None:
        status = deep(job.get("status") or {})
        status.setdefault("startTime", now())
        status.update(
            active=len(active),
            ready=sum(1 for p in active if is_ready(p)),
            succeeded=succeeded,
            terminating=0,
            uncountedTerminatedPods={},
        )
        if succeeded >= completions:
            status["completionTime"] = now()
            status["active"] = 0
            status["conditions"] = merge_conditions(
                status.get("conditions"),
                [
                    {
                        "type": "SuccessCriteriaMet",
                        "status": "True",
                        "reason": "CompletionsReached",
                        "message": "Reached expected number of succeeded pods",
                    },
                    {
                        "type": "Complete",
                        "status": "True",
                        "reason": "CompletionsReached",
                        "message": "Reached expected number of succeeded pods",
                    },
                ],
            )
        status = omit_zeros(status, "active", "succeeded")
        self.store.set_status(self.rt, *key_of(job), status)
