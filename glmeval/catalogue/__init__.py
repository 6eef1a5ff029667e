"""What glmeval knows about models: limits, defaults, prices and token estimates."""
