"""Running jobs: the runner, the client and its transports, and the rate limits.

Only this package opens connections to a model endpoint, and within it only
:mod:`~glmeval.run.client` (the SDK). The parts:

* :mod:`~glmeval.run.runner`: :class:`Runner`, the coordinating thread and its workers.
* :mod:`~glmeval.run.options`, :mod:`~glmeval.run.outcome`: :class:`RunOptions` in;
  :class:`RunCounts`, :class:`RunOutcome` and :func:`abort_message` out.
* :mod:`~glmeval.run.client`: :class:`GLMClient`, one attempt in sync / stream / async mode;
  errors classified into kinds.
* :mod:`~glmeval.run.retry`: which failures are tried again, and after what backoff.
* :mod:`~glmeval.run.ratelimit`: concurrency, requests and tokens per minute, the budget.
* :mod:`~glmeval.run.budget`: cost estimates and a run's account with its budget.
* :mod:`~glmeval.run.cache`: the response cache's keys and read policy.
* :mod:`~glmeval.run.grader`: the judge and embedding calls model-graded checks make.

Import from the modules (``from glmeval.run.runner import Runner``); this package imports
nothing, so ``import glmeval.run.ratelimit`` does not load the SDK.
"""
