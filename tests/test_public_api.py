"""The public API is deliberate: this test pins it. Every exception lives in errors.py."""

import importlib
import inspect
import pkgutil
import re

import corral
import corral.errors

PUBLIC = {
    "BudgetAlert",
    "Failure",
    "GuardTrip",
    "ModelCall",
    "ReviewRequested",
    "RunEvent",
    "RunFinished",
    "RunStarted",
    "StepDone",
    "SubtaskCreated",
    "SubtaskFinished",
    "ToolCall",
    "END",
    "AgentGuards",
    "AgentPlan",
    "AgentSpec",
    "Alert",
    "App",
    "BreakerOpen",
    "BreakerSpec",
    "BudgetExceeded",
    "BudgetLimits",
    "BudgetSpec",
    "CheckpointError",
    "CheckpointSpec",
    "ContextSpec",
    "CooldownActive",
    "DeadlinePassed",
    "CorralError",
    "CorralSaver",
    "EdgeSpec",
    "EffectInDoubt",
    "FallbackSpec",
    "FieldSpec",
    "FlowSpec",
    "GuardSpec",
    "GuardTripped",
    "HandoffError",
    "LoopDetected",
    "InputError",
    "Limits",
    "ManifestError",
    "Metrics",
    "ModelSpec",
    "NewTask",
    "NoOutput",
    "NodeError",
    "PermissionDenied",
    "PermissionsSpec",
    "Problem",
    "RateSpec",
    "Rejected",
    "Reply",
    "RetrySpec",
    "ReviewPending",
    "RoutingError",
    "RunError",
    "SDKRetriesWarning",
    "PriceSpec",
    "RunRecord",
    "RunResult",
    "SchemaSpec",
    "Script",
    "ScriptedChatModel",
    "ScriptedProviderError",
    "StepEvent",
    "StepLimitExceeded",
    "Task",
    "TaskBoard",
    "Team",
    "TeamBudgetSpec",
    "TeamPlan",
    "TeamSpec",
    "ToolSpec",
    "Trace",
    "TraceEvent",
    "UserError",
    "WhenSpec",
    "Workspace",
    "WorkspaceDamaged",
    "__version__",
    "load_team",
    "log_json",
    "manifest_json_schema",
    "open_workspace",
}


def test_public_api_is_pinned() -> None:
    assert set(corral.__all__) == PUBLIC
    for name in corral.__all__:
        assert hasattr(corral, name), name


def test_one_error_hierarchy() -> None:
    for name in (
        "ManifestError",
        "InputError",
        "RunError",
        "HandoffError",
        "RoutingError",
        "NodeError",
        "UserError",
        "GuardTripped",
        "CheckpointError",
    ):
        assert issubclass(getattr(corral, name), corral.CorralError)
    assert issubclass(corral.ManifestError, corral.UserError)
    assert issubclass(corral.InputError, corral.UserError)
    assert issubclass(corral.WorkspaceDamaged, corral.UserError)
    assert not issubclass(corral.RunError, corral.UserError)
    for name in ("BudgetExceeded", "StepLimitExceeded", "CooldownActive"):
        assert issubclass(getattr(corral, name), corral.GuardTripped)


def test_every_exception_is_defined_in_errors_py() -> None:
    elsewhere = []
    for info in pkgutil.walk_packages(corral.__path__, "corral."):
        if info.name == "corral.__main__":  # importing it runs the command line
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == info.name
                and info.name != "corral.errors"
            ):
                elsewhere.append(f"{info.name}.{name}")
    assert elsewhere == []


def test_the_docstring_draws_every_error() -> None:
    drawn = corral.errors.__doc__ or ""
    for name, value in vars(corral.errors).items():
        if inspect.isclass(value) and issubclass(value, BaseException):
            assert re.search(rf"^[\s│├└─]*{name}\s", drawn, re.MULTILINE), name


def test_stored_errors_come_back_typed() -> None:
    trip = corral.BudgetExceeded(agent="a", layer="daily_tokens", limit=10, used=8, requested=5)
    again = corral.RunError.from_dict(trip.to_dict())
    assert type(again) is corral.BudgetExceeded
    assert (again.agent, again.layer, again.used, str(again)) == ("a", "daily_tokens", 8, str(trip))
    unknown = corral.RunError.from_dict({"type": "Mystery", "message": "m", "agent": None})
    assert type(unknown) is corral.RunError
