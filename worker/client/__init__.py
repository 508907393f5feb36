"""The one client path every surface uses to reach any handoff in Temporal."""
