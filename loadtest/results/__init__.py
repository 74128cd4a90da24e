"""What a run measured: histograms, results, per-second series, printed reports."""
