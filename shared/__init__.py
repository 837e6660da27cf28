"""The project's common library: settings, logs, errors, database, internal credential and the
verified identity, the bearer-token parser, a bounded cache, a lean HTTP/1.1 connection pool,
health and metrics. No business logic lives here."""

from shared._app import create_service_app, freeze_startup_objects
from shared._bearer import BEARER_CHALLENGE, bearer_token, invalid_token
from shared._cache import BoundedCache, RememberedRefusals
from shared._database import (
    Database,
    async_database_url,
    database_url,
    is_sqlite,
    named_metadata,
)
from shared._exceptions import (
    BadGatewayError,
    BadRequestError,
    ClientError,
    ConflictError,
    ContentTooLargeError,
    ForbiddenError,
    GatewayTimeoutError,
    NotFoundError,
    PaymentRequiredError,
    ProblemError,
    RequestTimeoutError,
    ServerError,
    ServiceUnavailableError,
    SettingsError,
    TooManyRequestsError,
    UnauthorizedError,
    UnprocessableError,
)
from shared._health import ReadinessCheck
from shared._http import internal_client
from shared._http1 import (
    ConnectionPool,
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamResponse,
    UpstreamTimeoutError,
)
from shared._internal import (
    INTERNAL_TOKEN_HEADER,
    PUBLIC_ROUTE,
    USER_EMAIL_HEADER,
    USER_ID_HEADER,
    Identity,
    internal_token_matches,
    provide_identity,
)
from shared._json_policy import DEFAULT_MAX_BODY_BYTES, MAX_JSON_DEPTH, check_json_depth
from shared._lane import Answer, Lane, observing_send
from shared._lane_protocol import LaneProtocol
from shared._logging import configure_logging, get_logger
from shared._metrics import RequestMetrics, metrics_config
from shared._middleware import log_exchange, with_request_id
from shared._migrations import run_alembic_env, upgrade_database
from shared._openapi import (
    CREDENTIAL_PROBLEM,
    PROBLEM_SCHEMA,
    ApiDocs,
    documented,
    problem_response_object,
)
from shared._problems import PROBLEM_MEDIA_TYPE, problem_response, send_problem
from shared._relay import (
    MAX_RELAYED_BYTES,
    MAX_RELAYED_DELIVERIES,
    RELAY_MEDIA_TYPE,
    RELAY_PATH,
    RelayedAnswer,
    RelayedDelivery,
    decode_answers,
    decode_deliveries,
    encode_relay,
)
from shared._request_id import (
    REQUEST_ID_HEADER,
    accept_request_id,
    current_request_id,
    request_id_var,
)
from shared._serve import run_service
from shared._settings import (
    NonNegative,
    Positive,
    PositiveSeconds,
    Seconds,
    Share,
    load_settings,
)

__all__ = [
    "BEARER_CHALLENGE",
    "CREDENTIAL_PROBLEM",
    "DEFAULT_MAX_BODY_BYTES",
    "INTERNAL_TOKEN_HEADER",
    "MAX_JSON_DEPTH",
    "MAX_RELAYED_BYTES",
    "MAX_RELAYED_DELIVERIES",
    "PROBLEM_MEDIA_TYPE",
    "PROBLEM_SCHEMA",
    "PUBLIC_ROUTE",
    "RELAY_MEDIA_TYPE",
    "RELAY_PATH",
    "REQUEST_ID_HEADER",
    "USER_EMAIL_HEADER",
    "USER_ID_HEADER",
    "Answer",
    "ApiDocs",
    "BadGatewayError",
    "BadRequestError",
    "BoundedCache",
    "ClientError",
    "ConflictError",
    "ConnectionPool",
    "ContentTooLargeError",
    "Database",
    "ForbiddenError",
    "GatewayTimeoutError",
    "Identity",
    "Lane",
    "LaneProtocol",
    "NonNegative",
    "NotFoundError",
    "PaymentRequiredError",
    "Positive",
    "PositiveSeconds",
    "ProblemError",
    "ReadinessCheck",
    "RelayedAnswer",
    "RelayedDelivery",
    "RememberedRefusals",
    "RequestMetrics",
    "RequestTimeoutError",
    "Seconds",
    "ServerError",
    "ServiceUnavailableError",
    "SettingsError",
    "Share",
    "TooManyRequestsError",
    "UnauthorizedError",
    "UnprocessableError",
    "UpstreamConnectError",
    "UpstreamError",
    "UpstreamProtocolError",
    "UpstreamResponse",
    "UpstreamTimeoutError",
    "accept_request_id",
    "async_database_url",
    "bearer_token",
    "check_json_depth",
    "configure_logging",
    "create_service_app",
    "current_request_id",
    "database_url",
    "decode_answers",
    "decode_deliveries",
    "documented",
    "encode_relay",
    "freeze_startup_objects",
    "get_logger",
    "internal_client",
    "internal_token_matches",
    "invalid_token",
    "is_sqlite",
    "load_settings",
    "log_exchange",
    "metrics_config",
    "named_metadata",
    "observing_send",
    "problem_response",
    "problem_response_object",
    "provide_identity",
    "request_id_var",
    "run_alembic_env",
    "run_service",
    "send_problem",
    "upgrade_database",
    "with_request_id",
]
