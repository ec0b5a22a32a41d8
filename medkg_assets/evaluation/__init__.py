"""Pure IR evaluation: metrics, eval-set loading, expected-score comparison."""
