"""Local emulators of the CRM APIs Handoff talks to, for `handoff dev` and the tests.

They speak the real wire formats so the real client libraries run unchanged against them.
"""
