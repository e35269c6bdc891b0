"""Placement of containers on nodes: filters, strategies and reservations in etcd."""

from controller.scheduler.scheduler import Placed, Request, Scheduler, Unschedulable

__all__ = ["Placed", "Request", "Scheduler", "Unschedulable"]
