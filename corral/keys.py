"""Names corral puts into LangChain run metadata, shared by every layer that reads them."""

AGENT_KEY = "corral_agent"
"""Metadata key: the agent a model call is made for (scripts pick replies by it)."""

RUN_KEY = "corral_run"
"""Metadata key: the run a call belongs to (context tools act inside it)."""

IDEMPOTENCY_KEY = "corral_idempotency_key"
"""Metadata key: the idempotency key a tool call carries (same call, same key)."""

DRIVER_KEY = "corral_driver"
"""Metadata key: set when the App drives the run (it registers and ends the run itself)."""

SPAN_KEY = "__corral_span"
"""Configurable key: the OpenTelemetry span a node's spans nest under (LangGraph keeps
``__`` keys out of checkpoint metadata)."""

DEADLINE_KEY = "__corral_deadline"
"""Configurable key: ``(at, seconds)``, when the run's ``guards.run_deadline_seconds``
ends (by the App's clock) and how long it is."""

WORKFLOW_WAIT = "workflow_wait"
"""Event kind: a worker left the run paused or cooling down, and its Temporal workflow
waits for the decision or the timer (``updated_at``: the record as the worker left it)."""

HANDOVER_KEY = "__corral_handover"
"""Configurable key: a callable saying whether the run's cancellation is a hand-over (its
worker shuts down and another goes on with it), not a cancel: its record stays as it is."""
