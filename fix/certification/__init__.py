"""FIX session-level certification: raw-FIX scripts per test case, a runner and a summary table."""
