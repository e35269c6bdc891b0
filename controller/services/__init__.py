"""Replicated services: records, the leader's reconciler and the pieces it plans with."""
