"""kran's benchmarks (run through `make bench`), measured against runc and docker on the same machine."""
