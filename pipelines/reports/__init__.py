"""The HTML reports of runs and batches, with their plots and colour maps."""
