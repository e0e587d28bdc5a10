"""Capability names are open (``requires: [can_refund]``), so a misspelt one is caught
here: every name a tool requires must be granted to some agent, and every name an agent
is granted in ``permissions.can`` must be required by some tool. The built-in flags
(``can_deploy``, ``can_merge``, ``can_write_global``) keep their meaning and are exempt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from corral.errors import Problem, suggest
from corral.manifest._policies import BUILTIN_CAPABILITIES

if TYPE_CHECKING:
    from corral.manifest._fields import TeamFields as Team


def grant_problems(team: Team) -> list[Problem]:
    """Capability names required and never granted, or granted and never required."""
    granted = {name for agent in team.agents for name in agent.permissions.granted}
    required = {name for tool in team.tools.values() for name in tool.requires}
    problems = [
        Problem(
            f"tool {tool_name!r} requires {name!r}, which no agent is granted, so no agent "
            "may ever call it",
            f"grant it to an agent (permissions: {{can: [{name}]}}); "
            f"{suggest(name, sorted(granted))}",
            ("tools", tool_name, "requires", j),
        )
        for tool_name, tool in team.tools.items()
        for j, name in enumerate(tool.requires)
        if name not in granted and name not in BUILTIN_CAPABILITIES
    ]
    problems += [
        Problem(
            f"agent {agent.id!r} is granted {name!r}, which no tool requires",
            f"drop it, or name it in a tool's `requires`; {suggest(name, sorted(required))}",
            ("agents", i, "permissions", "can", j),
        )
        for i, agent in enumerate(team.agents)
        for j, name in enumerate(agent.permissions.can)
        if name not in required and name not in BUILTIN_CAPABILITIES
    ]
    return problems
