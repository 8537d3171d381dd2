"""The `trainwreck` commands: one module each, with `register(sub)` and `main(args)`."""
