"""Every function's Powertools trio (structured logs, traces, metrics), named after its service, and
the decorator that puts a Lambda handler under it. Logs never carry the event (it holds message
bodies and phone numbers) and traces never carry the response (rule 8)."""

from __future__ import annotations

import functools
from typing import Callable

from aws_lambda_powertools import Logger, Metrics, Tracer

from coexist.resources import METRICS_NAMESPACE


# What X-Ray traces besides the handler: the AWS SDK's calls. Powertools would otherwise patch every
# library the X-Ray SDK supports that it can import (sqlite3, requests, …), which Coexist does not
# call, paying for the imports at every cold start.
TRACED_LIBRARIES = ("botocore",)
# What the logger would copy from the Lambda context into every line and the line's log group
# already says (the function) or the stack fixes (its memory): some 190 bytes a line, ingested and
# billed per byte. The invocation's own facts stay: its request id, whether it was a cold start, its
# trace id.
FUNCTION_KEYS = ("function_name", "function_arn", "function_memory_size")


def tracer_of(service: str) -> Tracer:
    return Tracer(service=service, patch_modules=TRACED_LIBRARIES)


def powertools(service: str) -> tuple[Logger, Tracer, Metrics]:
    return Logger(service=service), tracer_of(service), Metrics(namespace=METRICS_NAMESPACE, service=service)


def lambda_entry(logger: Logger, tracer: Tracer, metrics: Metrics | None = None,
                 correlation_id_path: str | None = None) -> Callable[[Callable], Callable]:
    """The handler with the invocation's context in every log line, a trace segment, and its metrics
    flushed when it returns (a function that counts nothing passes no `metrics`).
    `correlation_id_path`: where the event carries the request's id (API Gateway's), logged as
    `correlation_id`."""

    def wrap(handler: Callable) -> Callable:
        if metrics is not None:
            handler = metrics.log_metrics(handler)
        traced = tracer.capture_lambda_handler(capture_response=False)(handler)

        @functools.wraps(traced)
        def with_the_invocations_keys(event, context):
            logger.remove_keys(FUNCTION_KEYS)  # appended by inject_lambda_context, just before
            return traced(event, context)

        return logger.inject_lambda_context(correlation_id_path=correlation_id_path, log_event=False)(with_the_invocations_keys)

    return wrap
