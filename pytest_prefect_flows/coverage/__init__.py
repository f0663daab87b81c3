"""Flow coverage: discovery of flows and tasks, per-run collection, reports and CI gates."""
