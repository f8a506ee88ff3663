"""The suite as data: named workloads, targets, checks and plans (built into plan.json)."""
