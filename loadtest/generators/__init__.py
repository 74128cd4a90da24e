"""Load generators: open and closed loop, arrival schedules, worker processes."""
