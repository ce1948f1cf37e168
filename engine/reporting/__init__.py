"""Reports from journals: timings, scorecards, timelines."""
