"""Results: the model, comparisons and writers (JUnit, JSON, reports)."""
