"""Starter files ``glmeval init`` scaffolds: suites (one per template) and the CI workflow.

They are data, read with :mod:`importlib.resources`; ``glmeval/cli/init.py`` fills the
``__NAME__`` placeholders (plain text replacement, so GitHub's ``${{ }}`` and shell ``$VAR``
stay as written).
"""
