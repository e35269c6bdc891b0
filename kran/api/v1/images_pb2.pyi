import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RegistryAuth(_message.Message):
    __slots__ = ("username", "password", "server_address", "identity_token")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    SERVER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    username: str
    password: str
    server_address: str
    identity_token: str
    def __init__(self, username: _Optional[str] = ..., password: _Optional[str] = ..., server_address: _Optional[str] = ..., identity_token: _Optional[str] = ...) -> None: ...

class PullImageRequest(_message.Message):
    __slots__ = ("reference", "platform", "all_tags", "auth", "node", "all_nodes")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    ALL_TAGS_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    ALL_NODES_FIELD_NUMBER: _ClassVar[int]
    reference: str
    platform: str
    all_tags: bool
    auth: RegistryAuth
    node: str
    all_nodes: bool
    def __init__(self, reference: _Optional[str] = ..., platform: _Optional[str] = ..., all_tags: _Optional[bool] = ..., auth: _Optional[_Union[RegistryAuth, _Mapping]] = ..., node: _Optional[str] = ..., all_nodes: _Optional[bool] = ...) -> None: ...

class PushImageRequest(_message.Message):
    __slots__ = ("reference", "all_tags", "auth", "node")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    ALL_TAGS_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    reference: str
    all_tags: bool
    auth: RegistryAuth
    node: str
    def __init__(self, reference: _Optional[str] = ..., all_tags: _Optional[bool] = ..., auth: _Optional[_Union[RegistryAuth, _Mapping]] = ..., node: _Optional[str] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("id", "status", "current", "total", "error", "node_name")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: str
    current: int
    total: int
    error: str
    node_name: str
    def __init__(self, id: _Optional[str] = ..., status: _Optional[str] = ..., current: _Optional[int] = ..., total: _Optional[int] = ..., error: _Optional[str] = ..., node_name: _Optional[str] = ...) -> None: ...

class LoginRequest(_message.Message):
    __slots__ = ("auth",)
    AUTH_FIELD_NUMBER: _ClassVar[int]
    auth: RegistryAuth
    def __init__(self, auth: _Optional[_Union[RegistryAuth, _Mapping]] = ...) -> None: ...

class LoginResponse(_message.Message):
    __slots__ = ("status", "identity_token")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    status: str
    identity_token: str
    def __init__(self, status: _Optional[str] = ..., identity_token: _Optional[str] = ...) -> None: ...

class SearchImagesRequest(_message.Message):
    __slots__ = ("term", "limit", "auth")
    TERM_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    term: str
    limit: int
    auth: RegistryAuth
    def __init__(self, term: _Optional[str] = ..., limit: _Optional[int] = ..., auth: _Optional[_Union[RegistryAuth, _Mapping]] = ...) -> None: ...

class SearchResult(_message.Message):
    __slots__ = ("name", "description", "star_count", "is_official")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STAR_COUNT_FIELD_NUMBER: _ClassVar[int]
    IS_OFFICIAL_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    star_count: int
    is_official: bool
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., star_count: _Optional[int] = ..., is_official: _Optional[bool] = ...) -> None: ...

class SearchImagesResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SearchResult]
    def __init__(self, results: _Optional[_Iterable[_Union[SearchResult, _Mapping]]] = ...) -> None: ...

class Image(_message.Message):
    __slots__ = ("id", "repo_tags", "repo_digests", "created", "size", "parent", "labels", "node_id", "node_name")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    REPO_TAGS_FIELD_NUMBER: _ClassVar[int]
    REPO_DIGESTS_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    id: str
    repo_tags: _containers.RepeatedScalarFieldContainer[str]
    repo_digests: _containers.RepeatedScalarFieldContainer[str]
    created: _timestamp_pb2.Timestamp
    size: int
    parent: str
    labels: _containers.ScalarMap[str, str]
    node_id: str
    node_name: str
    def __init__(self, id: _Optional[str] = ..., repo_tags: _Optional[_Iterable[str]] = ..., repo_digests: _Optional[_Iterable[str]] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., size: _Optional[int] = ..., parent: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., node_id: _Optional[str] = ..., node_name: _Optional[str] = ...) -> None: ...

class Layer(_message.Message):
    __slots__ = ("diff_id", "digest", "media_type", "size", "chain_id")
    DIFF_ID_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    diff_id: str
    digest: str
    media_type: str
    size: int
    chain_id: str
    def __init__(self, diff_id: _Optional[str] = ..., digest: _Optional[str] = ..., media_type: _Optional[str] = ..., size: _Optional[int] = ..., chain_id: _Optional[str] = ...) -> None: ...

class ImageDetail(_message.Message):
    __slots__ = ("image", "config", "manifest", "manifest_digest", "layers")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_DIGEST_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    image: Image
    config: bytes
    manifest: bytes
    manifest_digest: str
    layers: _containers.RepeatedCompositeFieldContainer[Layer]
    def __init__(self, image: _Optional[_Union[Image, _Mapping]] = ..., config: _Optional[bytes] = ..., manifest: _Optional[bytes] = ..., manifest_digest: _Optional[str] = ..., layers: _Optional[_Iterable[_Union[Layer, _Mapping]]] = ...) -> None: ...

class ListImagesRequest(_message.Message):
    __slots__ = ("all", "node", "filters")
    class FiltersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ALL_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    all: bool
    node: str
    filters: _containers.ScalarMap[str, str]
    def __init__(self, all: _Optional[bool] = ..., node: _Optional[str] = ..., filters: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ListImagesResponse(_message.Message):
    __slots__ = ("images",)
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[Image]
    def __init__(self, images: _Optional[_Iterable[_Union[Image, _Mapping]]] = ...) -> None: ...

class InspectImageRequest(_message.Message):
    __slots__ = ("reference", "node")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    reference: str
    node: str
    def __init__(self, reference: _Optional[str] = ..., node: _Optional[str] = ...) -> None: ...

class ImportHeader(_message.Message):
    __slots__ = ("reference", "node", "changes", "message", "platform")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    reference: str
    node: str
    changes: _containers.RepeatedScalarFieldContainer[str]
    message: str
    platform: str
    def __init__(self, reference: _Optional[str] = ..., node: _Optional[str] = ..., changes: _Optional[_Iterable[str]] = ..., message: _Optional[str] = ..., platform: _Optional[str] = ...) -> None: ...

class ImportImageRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: ImportHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[ImportHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class ImportImageResponse(_message.Message):
    __slots__ = ("image",)
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    image: Image
    def __init__(self, image: _Optional[_Union[Image, _Mapping]] = ...) -> None: ...

class LoadHeader(_message.Message):
    __slots__ = ("node",)
    NODE_FIELD_NUMBER: _ClassVar[int]
    node: str
    def __init__(self, node: _Optional[str] = ...) -> None: ...

class LoadImagesRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: LoadHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[LoadHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class LoadImagesResponse(_message.Message):
    __slots__ = ("images", "messages")
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[Image]
    messages: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, images: _Optional[_Iterable[_Union[Image, _Mapping]]] = ..., messages: _Optional[_Iterable[str]] = ...) -> None: ...

class SaveImagesRequest(_message.Message):
    __slots__ = ("references", "node")
    REFERENCES_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    references: _containers.RepeatedScalarFieldContainer[str]
    node: str
    def __init__(self, references: _Optional[_Iterable[str]] = ..., node: _Optional[str] = ...) -> None: ...

class DataChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class TagImageRequest(_message.Message):
    __slots__ = ("source", "target", "node")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    source: str
    target: str
    node: str
    def __init__(self, source: _Optional[str] = ..., target: _Optional[str] = ..., node: _Optional[str] = ...) -> None: ...

class TagImageResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RemoveImageRequest(_message.Message):
    __slots__ = ("reference", "force", "no_prune", "node")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    NO_PRUNE_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    reference: str
    force: bool
    no_prune: bool
    node: str
    def __init__(self, reference: _Optional[str] = ..., force: _Optional[bool] = ..., no_prune: _Optional[bool] = ..., node: _Optional[str] = ...) -> None: ...

class RemovedImage(_message.Message):
    __slots__ = ("untagged", "deleted")
    UNTAGGED_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    untagged: str
    deleted: str
    def __init__(self, untagged: _Optional[str] = ..., deleted: _Optional[str] = ...) -> None: ...

class RemoveImageResponse(_message.Message):
    __slots__ = ("removed",)
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: _containers.RepeatedCompositeFieldContainer[RemovedImage]
    def __init__(self, removed: _Optional[_Iterable[_Union[RemovedImage, _Mapping]]] = ...) -> None: ...

class PruneImagesRequest(_message.Message):
    __slots__ = ("all", "node")
    ALL_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    all: bool
    node: str
    def __init__(self, all: _Optional[bool] = ..., node: _Optional[str] = ...) -> None: ...

class PruneImagesResponse(_message.Message):
    __slots__ = ("removed", "space_reclaimed")
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    SPACE_RECLAIMED_FIELD_NUMBER: _ClassVar[int]
    removed: _containers.RepeatedCompositeFieldContainer[RemovedImage]
    space_reclaimed: int
    def __init__(self, removed: _Optional[_Iterable[_Union[RemovedImage, _Mapping]]] = ..., space_reclaimed: _Optional[int] = ...) -> None: ...

class BuildOptions(_message.Message):
    __slots__ = ("tags", "dockerfile", "dockerfile_content", "build_args", "target", "no_cache", "pull", "labels", "node", "auth")
    class BuildArgsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TAGS_FIELD_NUMBER: _ClassVar[int]
    DOCKERFILE_FIELD_NUMBER: _ClassVar[int]
    DOCKERFILE_CONTENT_FIELD_NUMBER: _ClassVar[int]
    BUILD_ARGS_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    NO_CACHE_FIELD_NUMBER: _ClassVar[int]
    PULL_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    tags: _containers.RepeatedScalarFieldContainer[str]
    dockerfile: str
    dockerfile_content: bytes
    build_args: _containers.ScalarMap[str, str]
    target: str
    no_cache: bool
    pull: bool
    labels: _containers.ScalarMap[str, str]
    node: str
    auth: _containers.RepeatedCompositeFieldContainer[RegistryAuth]
    def __init__(self, tags: _Optional[_Iterable[str]] = ..., dockerfile: _Optional[str] = ..., dockerfile_content: _Optional[bytes] = ..., build_args: _Optional[_Mapping[str, str]] = ..., target: _Optional[str] = ..., no_cache: _Optional[bool] = ..., pull: _Optional[bool] = ..., labels: _Optional[_Mapping[str, str]] = ..., node: _Optional[str] = ..., auth: _Optional[_Iterable[_Union[RegistryAuth, _Mapping]]] = ...) -> None: ...

class BuildRequest(_message.Message):
    __slots__ = ("options", "chunk")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    options: BuildOptions
    chunk: bytes
    def __init__(self, options: _Optional[_Union[BuildOptions, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class BuildProgress(_message.Message):
    __slots__ = ("stream", "pull", "image_id", "error", "error_code", "node_name")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    PULL_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    stream: str
    pull: Progress
    image_id: str
    error: str
    error_code: int
    node_name: str
    def __init__(self, stream: _Optional[str] = ..., pull: _Optional[_Union[Progress, _Mapping]] = ..., image_id: _Optional[str] = ..., error: _Optional[str] = ..., error_code: _Optional[int] = ..., node_name: _Optional[str] = ...) -> None: ...

class PruneBuildCacheRequest(_message.Message):
    __slots__ = ("all", "node")
    ALL_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    all: bool
    node: str
    def __init__(self, all: _Optional[bool] = ..., node: _Optional[str] = ...) -> None: ...

class PruneBuildCacheResponse(_message.Message):
    __slots__ = ("caches_deleted", "space_reclaimed")
    CACHES_DELETED_FIELD_NUMBER: _ClassVar[int]
    SPACE_RECLAIMED_FIELD_NUMBER: _ClassVar[int]
    caches_deleted: _containers.RepeatedScalarFieldContainer[str]
    space_reclaimed: int
    def __init__(self, caches_deleted: _Optional[_Iterable[str]] = ..., space_reclaimed: _Optional[int] = ...) -> None: ...
