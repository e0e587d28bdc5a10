"""The formats a team can be drawn in (apart from the drawing code, so that the command
line's help can list them without importing it)."""

FORMATS: tuple[str, ...] = ("mermaid", "dot", "svg", "png", "json", "graphml")
