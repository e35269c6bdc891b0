"""The controller's typed store over etcd (prefix /kran/v1/), see base.py."""

from controller.store.base import Change, Check, Entry, Store, StoreStatus
from controller.store.etcd import EtcdStore

__all__ = ["Change", "Check", "Entry", "EtcdStore", "Store", "StoreStatus"]
