"""The `kran` command line, built only on the SDK (kran.client)."""
