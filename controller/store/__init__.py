"""The controller's typed store over etcd (prefix /kran/v1/), see base.py."""

from controller.store.base import Check, Entry, Store, StoreStatus
from controller.store.etcd import EtcdStore

__all__ = ["Check", "Entry", "EtcdStore", "Store", "StoreStatus"]
