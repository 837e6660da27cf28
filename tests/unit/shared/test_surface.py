from __future__ import annotations

import shared


def test_public_surface_is_exactly_what_all_declares() -> None:
    exported = {name for name in dir(shared) if not name.startswith("_")}
    assert set(shared.__all__) <= exported
    assert sorted(shared.__all__) == sorted(
        [
            "CREDENTIAL_PROBLEM",
            "INTERNAL_TOKEN_HEADER",
            "PROBLEM_MEDIA_TYPE",
            "PROBLEM_SCHEMA",
            "PUBLIC_ROUTE",
            "REQUEST_ID_HEADER",
            "USER_EMAIL_HEADER",
            "USER_ID_HEADER",
            "ApiDocs",
            "BadGatewayError",
            "BadRequestError",
            "ClientError",
            "ConflictError",
            "ContentTooLargeError",
            "Database",
            "ForbiddenError",
            "GatewayTimeoutError",
            "NotFoundError",
            "PaymentRequiredError",
            "ProblemError",
            "ServerError",
            "ReadinessCheck",
            "ServiceUnavailableError",
            "SettingsError",
            "TooManyRequestsError",
            "UnauthorizedError",
            "UnprocessableError",
            "async_database_url",
            "configure_logging",
            "create_service_app",
            "current_request_id",
            "documented",
            "get_logger",
            "internal_client",
            "internal_token_matches",
            "is_sqlite",
            "load_settings",
            "named_metadata",
            "problem_response",
            "problem_response_object",
            "run_alembic_env",
            "run_service",
            "upgrade_database",
        ]
    )


def test_every_problem_error_has_a_distinct_status() -> None:
    statuses = [cls.status for cls in shared.ProblemError.__subclasses__()]
    assert len(statuses) == len(set(statuses))
    assert all(400 <= status < 600 for status in statuses)
