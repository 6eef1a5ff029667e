"""Running jobs: the runner, the client and its transports, and the rate limits.

Only this package opens connections to a model endpoint.
"""
