"""The controller's typed store over etcd (prefix /kran/v1/), see base.py."""

from controller.store.base import Entry, Store, StoreStatus
from controller.store.etcd import EtcdStore

__all__ = ["Entry", "EtcdStore", "Store", "StoreStatus"]
