"""Runs on Temporal workers (``pip install 'corral[scale]'``).

A run is a workflow; an activity advances it through the team's compiled graph from its
last checkpoint; reviews wait as signals and cooldowns as durable timers, holding no
worker; a delegation round's subtasks fan out as activities on any worker (one
``CorralFanout`` workflow per round) and are joined by their supervisor.
``corral worker TEAM.yaml --temporal HOST:PORT`` serves a team's task queue;
``Dispatcher`` submits runs, decides reviews and cancels runs.
"""

from corral.scale._activities import Steps
from corral.scale._client import Dispatcher, result_of
from corral.scale._fanout import CorralFanout
from corral.scale._subtasks import Subtasks
from corral.scale._types import Decision, Outcome, Start, State, Step
from corral.scale._worker import queue_of, serve, subtask_worker, worker, workspace_of
from corral.scale._workflow import CorralRun

__all__ = [
    "CorralFanout",
    "CorralRun",
    "Decision",
    "Dispatcher",
    "Outcome",
    "Start",
    "State",
    "Step",
    "Steps",
    "Subtasks",
    "queue_of",
    "result_of",
    "serve",
    "subtask_worker",
    "worker",
    "workspace_of",
]
