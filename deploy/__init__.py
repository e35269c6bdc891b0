"""Deployment helpers: the multi-host lab (deploy.lab); the shell scripts beside it run `make up`/`make down`."""
