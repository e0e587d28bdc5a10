"""The flow node: runs an agent on the payload of its inbound edge and hands the answer on."""

from __future__ import annotations

from langchain_core.runnables import RunnableConfig

from corral.graphs._state import TeamState
from corral.nodes._base import Inbound, Node, Steps, Work
from corral.nodes._delegation import Runner, call_config
from corral.nodes._handoff import NodePlan, hand_on


class FlowNode(Node):
    """One agent of the flow: answer, validate, route, hand on."""

    def __init__(self, plan: NodePlan, runner: Runner) -> None:
        self.plan = plan
        self.runner = runner
        self.name = plan.agent.id

    def steps(self, state: TeamState, config: RunnableConfig) -> Steps:
        handoff = state["handoff"]
        run_id = str(config.get("configurable", {}).get("thread_id", ""))
        step = config.get("metadata", {}).get("langgraph_step", 0)
        agent = self.plan.agent.id
        work = Work(run_id=run_id, key=f"{run_id}:{agent}@{step}", depth=0,
                    config=call_config(config, agent, run_id))
        inbound = Inbound(schema=handoff["schema"], source=handoff["source"],
                          payload=handoff["payload"])
        payload, usage = yield from self.runner.answer(inbound, work)
        return hand_on(self.plan, payload, usage)

