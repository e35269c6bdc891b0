"""The agent's registry client: pull, push, login and search over the distribution API (v2).

`operations.Distribution` is what the Images servicer calls; the modules
hold the pieces: registries (endpoints, mirrors, TLS), auth and client
(HTTP and authentication), manifests, verify (digests, DiffIDs, bombs),
transfers (shared, limited downloads and uploads), progress, pull, push,
login, search.
"""
