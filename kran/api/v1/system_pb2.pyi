from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class VersionRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VersionResponse(_message.Message):
    __slots__ = ("version", "api_version", "python_version", "git_commit", "os", "architecture", "kernel_version", "etcd_version")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    API_VERSION_FIELD_NUMBER: _ClassVar[int]
    PYTHON_VERSION_FIELD_NUMBER: _ClassVar[int]
    GIT_COMMIT_FIELD_NUMBER: _ClassVar[int]
    OS_FIELD_NUMBER: _ClassVar[int]
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    KERNEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    ETCD_VERSION_FIELD_NUMBER: _ClassVar[int]
    version: str
    api_version: str
    python_version: str
    git_commit: str
    os: str
    architecture: str
    kernel_version: str
    etcd_version: str
    def __init__(self, version: _Optional[str] = ..., api_version: _Optional[str] = ..., python_version: _Optional[str] = ..., git_commit: _Optional[str] = ..., os: _Optional[str] = ..., architecture: _Optional[str] = ..., kernel_version: _Optional[str] = ..., etcd_version: _Optional[str] = ...) -> None: ...

class InfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class InfoResponse(_message.Message):
    __slots__ = ("controller_address", "etcd_endpoints", "embedded_etcd", "nodes", "nodes_ready", "nodes_down", "containers", "containers_running", "containers_paused", "containers_stopped", "images", "server_version", "leader")
    CONTROLLER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ETCD_ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDED_ETCD_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    NODES_READY_FIELD_NUMBER: _ClassVar[int]
    NODES_DOWN_FIELD_NUMBER: _ClassVar[int]
    CONTAINERS_FIELD_NUMBER: _ClassVar[int]
    CONTAINERS_RUNNING_FIELD_NUMBER: _ClassVar[int]
    CONTAINERS_PAUSED_FIELD_NUMBER: _ClassVar[int]
    CONTAINERS_STOPPED_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    controller_address: str
    etcd_endpoints: _containers.RepeatedScalarFieldContainer[str]
    embedded_etcd: bool
    nodes: int
    nodes_ready: int
    nodes_down: int
    containers: int
    containers_running: int
    containers_paused: int
    containers_stopped: int
    images: int
    server_version: str
    leader: str
    def __init__(self, controller_address: _Optional[str] = ..., etcd_endpoints: _Optional[_Iterable[str]] = ..., embedded_etcd: _Optional[bool] = ..., nodes: _Optional[int] = ..., nodes_ready: _Optional[int] = ..., nodes_down: _Optional[int] = ..., containers: _Optional[int] = ..., containers_running: _Optional[int] = ..., containers_paused: _Optional[int] = ..., containers_stopped: _Optional[int] = ..., images: _Optional[int] = ..., server_version: _Optional[str] = ..., leader: _Optional[str] = ...) -> None: ...

class AgentInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AgentInfoResponse(_message.Message):
    __slots__ = ("node_id", "images", "image_bytes", "state_dir", "version")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    IMAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    STATE_DIR_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    images: int
    image_bytes: int
    state_dir: str
    version: str
    def __init__(self, node_id: _Optional[str] = ..., images: _Optional[int] = ..., image_bytes: _Optional[int] = ..., state_dir: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...
