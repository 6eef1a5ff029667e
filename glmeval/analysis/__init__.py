"""Reading stored runs: pandas frames, statistics, run-vs-run comparison and the ``--fail-on`` gate."""
