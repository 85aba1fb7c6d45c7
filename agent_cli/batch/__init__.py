"""`agent batch`: many issues at once, each an ordinary durable run, on a local process
pool or on Ray. `service` is the entry point; Ray is imported only by `onray`, and only
for a `--ray` batch."""
