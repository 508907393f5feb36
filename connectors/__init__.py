"""CRM connectors: the `CrmConnector` seam, its implementations and the local sandboxes.

Nothing in `workflows/` imports this package's SDK-backed modules; activities use a
connector, and only `worker/` chooses which one.
"""
