"""The support desk for a LangGraph server: `langgraph dev` in this folder serves it.

The server brings its own checkpointer; corral's guards, budgets, run registry and
events use the workspace below.
"""

from pathlib import Path

from corral import load_team

HERE = Path(__file__).resolve().parent
app = load_team(HERE / "team.yaml").compile(db=HERE / ".corral" / "server.db")
graph = app.server_graph()
