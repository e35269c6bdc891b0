"""docker build against kran build: a multi-stage Dockerfile on busybox, cold and with a warm cache."""
