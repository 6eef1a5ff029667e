from glmeval.cli import main

main()
