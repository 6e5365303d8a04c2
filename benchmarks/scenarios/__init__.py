"""One module per scenario; each exposes ``run(opts) -> list[dict]`` (rows of the table / JSON)."""

SCENARIOS = ("brunel_a", "brunel_a_batch", "brunel_a_plastic", "scale", "meanfield", "wiring")
