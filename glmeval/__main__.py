from glmeval.cli import run

run()
