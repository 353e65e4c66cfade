"""stackcast: train, register and serve stacked recurrent forecasters."""
