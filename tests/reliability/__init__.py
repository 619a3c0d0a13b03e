"""Reliability suite (issue 6): KeepDesk under crashes and faults, with real processes."""
