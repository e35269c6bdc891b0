"""Model and Collection: the shape every SDK resource shares (docker-py's)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kran.client.client import Client


class Model:
    """One resource: `id`, `short_id`, Docker-shaped `attrs`, and `reload()`."""

    id_attribute = "Id"

    def __init__(self, attrs: dict[str, Any], client: Client, collection: Collection):
        self.attrs = attrs
        self.client = client
        self.collection = collection

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.short_id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, type(self)) and other.id == self.id

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.id))

    @property
    def id(self) -> str:
        """The full id."""
        return self.attrs.get(self.id_attribute, "")

    @property
    def short_id(self) -> str:
        """The id truncated to 12 characters (after any algorithm prefix)."""
        return self.id[:12]

    def reload(self) -> None:
        """Fetch the resource again and replace attrs."""
        self.attrs = self.collection.get(self.id).attrs


class PlacedModel(Model):
    """A model of something that lives on one node (its `message` names the node)."""

    message: Any

    @property
    def node_id(self) -> str:
        """Id of the node it lives on."""
        return self.message.node_id

    @property
    def node_name(self) -> str:
        """Hostname of the node it lives on."""
        return self.message.node_name


class Collection:
    """The resources of one kind, reached through one client.

    Each collection has `get(key)`, which `Model.reload()` calls.
    """

    model: type[Model] = Model

    def __init__(self, client: Client):
        self.client = client

    def prepare_model(self, attrs: dict[str, Any]) -> Model:
        """Wrap attrs in this collection's model."""
        return self.model(attrs, client=self.client, collection=self)
