"""The public API is deliberate: this test pins it."""

import corral

PUBLIC = {
    "END",
    "AgentSpec",
    "App",
    "BudgetSpec",
    "CheckpointSpec",
    "CorralError",
    "EdgeSpec",
    "FieldSpec",
    "FlowSpec",
    "GuardSpec",
    "HandoffError",
    "InputError",
    "ManifestError",
    "ModelSpec",
    "NodeError",
    "PermissionsSpec",
    "Problem",
    "RateSpec",
    "Reply",
    "RoutingError",
    "RunError",
    "RunRecord",
    "RunResult",
    "SchemaSpec",
    "Script",
    "ScriptedChatModel",
    "ScriptedProviderError",
    "StepEvent",
    "Team",
    "ToolSpec",
    "UserError",
    "WhenSpec",
    "__version__",
    "load_team",
    "manifest_json_schema",
    "AgentGuards",
    "CheckpointError",
    "CorralSaver",
    "GuardTripped",
    "Limits",
    "NewTask",
    "Task",
    "TaskBoard",
    "Workspace",
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
    assert not issubclass(corral.RunError, corral.UserError)
