"""Jobs: pods run to completion until ``completions`` succeeded, ``parallelism`` at a time.

The pods finish on their own (see pods.py: a simulated pod succeeds after the latency
"job"; a pod that runs as a process succeeds or fails with its exit code); this controller
counts them, replaces failed ones and marks the Job Complete, or Failed once more pods
failed than ``backoffLimit`` (default 6) allows, deleting its active pods.
activeDeadlineSeconds, podFailurePolicy and ttlSecondsAfterFinished are not honoured.
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
from sandbox.kube.workloads import REFUSED_RETRY_SECONDS, WorkloadReconciler, pod_from_template

DEFAULT_BACKOFF_LIMIT = 6


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
        failed = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Failed")
        active = [p for p in pods if not is_terminal(p)]
        backoff_limit = spec.get("backoffLimit")
        if failed > (DEFAULT_BACKOFF_LIMIT if backoff_limit is None else int(backoff_limit)):
            for pod in active:
                delete_quietly(self.store, self.kinds.pod, *key_of(pod))
            self._write_failed(job, succeeded, failed)
            return None
        if spec.get("suspend"):
            for pod in active:
                delete_quietly(self.store, self.kinds.pod, *key_of(pod))
            active = []
        else:
            missing = min(parallelism - len(active), completions - succeeded - len(active))
            for _ in range(max(missing, 0)):
                created = self._create_pod(job)
                if created is None:
                    self._write_status(job, active, succeeded, completions, failed)
                    return REFUSED_RETRY_SECONDS
                active.append(created)
        self._write_status(job, active, succeeded, completions, failed)
        return None

    def _create_pod(self, job: dict[str, Any]) -> dict[str, Any] | None:
        name = job["metadata"]["name"]
        job_labels = {
            "batch.kubernetes.io/controller-uid": uid(job),
            "batch.kubernetes.io/job-name": name,
            "controller-uid": uid(job),
            "job-name": name,
        }
        pod = pod_from_template(job["spec"].get("template") or {}, job, self.rt, job_labels)
        pod["metadata"]["generateName"] = f"{name}-"
        return self.create_pod(pod)

    def _write_failed(self, job: dict[str, Any], succeeded: int, failed: int) -> None:
        status = deep(job.get("status") or {})
        status.setdefault("startTime", now())
        status.update(active=0, ready=0, succeeded=succeeded, failed=failed, terminating=0)
        message = "Job has reached the specified backoff limit"
        status["conditions"] = merge_conditions(
            status.get("conditions"),
            [
                {
                    "type": kind,
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "message": message,
                }
                for kind in ("FailureTarget", "Failed")
            ],
        )
        status = omit_zeros(status, "active", "succeeded", "failed")
        self.store.set_status(self.rt, *key_of(job), status)

    def _write_status(
        self,
        job: dict[str, Any],
        active: list[dict],
        succeeded: int,
        completions: int,
        failed: int = 0,
    ) -> None:
        status = deep(job.get("status") or {})
        status.setdefault("startTime", now())
        status.update(
            active=len(active),
            ready=sum(1 for p in active if is_ready(p)),
            succeeded=succeeded,
            failed=failed,
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
        status = omit_zeros(status, "active", "succeeded", "failed")
        self.store.set_status(self.rt, *key_of(job), status)
