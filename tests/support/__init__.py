"""The one home of the test suites' shared helpers and fixtures data (importable as
`support`; tests/conftest.py holds the pytest fixtures for the servers).

- `handoffs`: a worker on a memory CRM, starting, polling, skipping time;
- `processes`: real `handoff`/`python -m worker` processes for integration tests;
- `hubspot`, `salesforce`: the CRM sandboxes served for a test, their clients and envs;
- `api`, `cli`: the API in-process and surface checks shared by every handoff type;
- `faults`: driving many handoffs through CRM and worker faults;
- `postgres`: a real PostgreSQL server for the stall store;
- `lead_to_cash_writes`, `stall_events`: recorded write-backs and hand-worked events.
"""
