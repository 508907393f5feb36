"""Why deals stall: the stage-event store, the figures drawn from it, and their charts."""
