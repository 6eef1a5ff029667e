"""A custom check for the every-check suite: the answer mentions the case's expected city."""


def mentions_city(output, context):
    city = context["vars"]["city"]
    return city in output, f"looked for {city!r} in the answer"
