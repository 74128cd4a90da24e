from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BatchCost(_message.Message):
    __slots__ = ("fixed_s", "per_row_s")
    FIXED_S_FIELD_NUMBER: _ClassVar[int]
    PER_ROW_S_FIELD_NUMBER: _ClassVar[int]
    fixed_s: float
    per_row_s: float
    def __init__(self, fixed_s: _Optional[float] = ..., per_row_s: _Optional[float] = ...) -> None: ...

class LoadReport(_message.Message):
    __slots__ = ("replica_id", "model", "seq", "interval_s", "queued_requests", "queued_rows", "inflight_rows", "arrived_requests", "arrival_rows_per_s", "completed_rows", "rejected_requests", "batch_cost", "slots_per_pod", "max_batch_size", "ready_endpoints", "starting_endpoints", "final", "devices_per_pod", "terminating_endpoints", "peer_address")
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    QUEUED_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    QUEUED_ROWS_FIELD_NUMBER: _ClassVar[int]
    INFLIGHT_ROWS_FIELD_NUMBER: _ClassVar[int]
    ARRIVED_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    ARRIVAL_ROWS_PER_S_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_ROWS_FIELD_NUMBER: _ClassVar[int]
    REJECTED_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    BATCH_COST_FIELD_NUMBER: _ClassVar[int]
    SLOTS_PER_POD_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    READY_ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    STARTING_ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    DEVICES_PER_POD_FIELD_NUMBER: _ClassVar[int]
    TERMINATING_ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    PEER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    replica_id: str
    model: str
    seq: int
    interval_s: float
    queued_requests: int
    queued_rows: int
    inflight_rows: int
    arrived_requests: int
    arrival_rows_per_s: float
    completed_rows: int
    rejected_requests: int
    batch_cost: BatchCost
    slots_per_pod: int
    max_batch_size: int
    ready_endpoints: int
    starting_endpoints: int
    final: bool
    devices_per_pod: int
    terminating_endpoints: int
    peer_address: str
    def __init__(self, replica_id: _Optional[str] = ..., model: _Optional[str] = ..., seq: _Optional[int] = ..., interval_s: _Optional[float] = ..., queued_requests: _Optional[int] = ..., queued_rows: _Optional[int] = ..., inflight_rows: _Optional[int] = ..., arrived_requests: _Optional[int] = ..., arrival_rows_per_s: _Optional[float] = ..., completed_rows: _Optional[int] = ..., rejected_requests: _Optional[int] = ..., batch_cost: _Optional[_Union[BatchCost, _Mapping]] = ..., slots_per_pod: _Optional[int] = ..., max_batch_size: _Optional[int] = ..., ready_endpoints: _Optional[int] = ..., starting_endpoints: _Optional[int] = ..., final: _Optional[bool] = ..., devices_per_pod: _Optional[int] = ..., terminating_endpoints: _Optional[int] = ..., peer_address: _Optional[str] = ...) -> None: ...

class StreamLoadSummary(_message.Message):
    __slots__ = ("reports",)
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    reports: int
    def __init__(self, reports: _Optional[int] = ...) -> None: ...

class LoadReportReply(_message.Message):
    __slots__ = ("autoscaler_id", "leader", "model", "ack_seq", "reports", "gateway_replicas", "gateway_peers")
    AUTOSCALER_ID_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ACK_SEQ_FIELD_NUMBER: _ClassVar[int]
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_PEERS_FIELD_NUMBER: _ClassVar[int]
    autoscaler_id: str
    leader: bool
    model: str
    ack_seq: int
    reports: int
    gateway_replicas: _containers.RepeatedScalarFieldContainer[str]
    gateway_peers: _containers.RepeatedCompositeFieldContainer[GatewayPeer]
    def __init__(self, autoscaler_id: _Optional[str] = ..., leader: _Optional[bool] = ..., model: _Optional[str] = ..., ack_seq: _Optional[int] = ..., reports: _Optional[int] = ..., gateway_replicas: _Optional[_Iterable[str]] = ..., gateway_peers: _Optional[_Iterable[_Union[GatewayPeer, _Mapping]]] = ...) -> None: ...

class GatewayPeer(_message.Message):
    __slots__ = ("replica_id", "peer_address")
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    PEER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    replica_id: str
    peer_address: str
    def __init__(self, replica_id: _Optional[str] = ..., peer_address: _Optional[str] = ...) -> None: ...
