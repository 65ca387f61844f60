"""From one botocore operation and its parameters to what IAM authorizes: actions and resource ARNs.

IAM's action is usually the service's IAM prefix and the operation name; the exceptions are listed
(Converse is `bedrock:InvokeModel`, a DynamoDB transaction is each item's own action, …). The
resource is derived from the parameters that name it. An operation of a service this module does
not know gets the resource `*`: a role that grants that action only on specific ARNs then refuses
it, and the contract test names the call, so an unmodelled call fails loudly rather than passing.
Operations that AWS does not authorize with IAM (Connect participant calls carry the participant's
token) are not requests a role needs to allow.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache

from tests.contract.template import ACCOUNT, PARTITION, REGION

# botocore service name -> IAM action prefix, where they differ.
IAM_PREFIX = {
    "stepfunctions": "states",
    "bedrock-runtime": "bedrock",
    "lexv2-runtime": "lex",
    "socialmessaging": "social-messaging",
}

# (botocore service, operation) -> IAM action, where it is not prefix:Operation.
ACTION = {
    ("bedrock-runtime", "Converse"): "bedrock:InvokeModel",
    ("bedrock-runtime", "ConverseStream"): "bedrock:InvokeModelWithResponseStream",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "ListObjects"): "s3:ListBucket",
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("apigatewaymanagementapi", "PostToConnection"): "execute-api:ManageConnections",
    ("apigatewaymanagementapi", "GetConnection"): "execute-api:ManageConnections",
    ("apigatewaymanagementapi", "DeleteConnection"): "execute-api:ManageConnections",
    ("lambda", "Invoke"): "lambda:InvokeFunction",
}

# The items of a DynamoDB transaction are authorized as their own actions.
TRANSACT_ACTION = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}


def _arn(service: str, resource: str, *, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:{PARTITION}:{service}:{region}:{account}:{resource}"


def _call(action: str, resource: str, context: dict | None = None) -> dict:
    return {"action": action, "resource": resource, "context": context or {}}


def _dynamodb(operation: str, params: dict) -> list[dict]:
    table = lambda name: _arn("dynamodb", f"table/{name}")  # noqa: E731
    if operation in ("BatchWriteItem", "BatchGetItem"):
        return [_call(f"dynamodb:{operation}", table(name)) for name in params.get("RequestItems", {})]
    if operation in ("TransactWriteItems", "TransactGetItems"):
        calls = []
        for item in params.get("TransactItems", []):
            for kind, request in item.items():
                calls.append(_call(f"dynamodb:{TRANSACT_ACTION[kind]}", table(request["TableName"])))
        return calls
    resource = table(params["TableName"]) if "TableName" in params else "*"
    if "IndexName" in params:
        resource += f"/index/{params['IndexName']}"
    return [_call(f"dynamodb:{operation}", resource)]


def queue_arn(url: str) -> str:
    """`https://sqs.<region>.amazonaws.com/<account>/<name>` (or the emulator's URL) as an ARN."""
    account, name = url.rstrip("/").split("/")[-2:]
    return _arn("sqs", name, account=account)


def _s3(operation: str, params: dict) -> str:
    bucket, key = params.get("Bucket"), params.get("Key")
    if bucket is None:
        return "*"
    return f"arn:{PARTITION}:s3:::{bucket}" + (f"/{key}" if key is not None and "Object" in operation else "")


def _connect(operation: str, params: dict) -> list[str]:
    instance = params.get("InstanceId", "")
    instance_arn = instance if instance.startswith("arn:") else _arn("connect", f"instance/{instance}")
    if operation == "StartChatContact":
        return [f"{instance_arn}/contact-flow/{params['ContactFlowId']}"]
    if operation == "StartContactStreaming":
        return [instance_arn, f"{instance_arn}/contact/{params['ContactId']}"]
    if "ContactId" in params:
        return [f"{instance_arn}/contact/{params['ContactId']}"]
    return [instance_arn]


def _states(operation: str, params: dict) -> str:
    if operation in ("SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat"):
        return "*"  # IAM has no resource type for a task token
    return params.get("executionArn") or params.get("stateMachineArn") or params.get("mapRunArn") or "*"


def _social_messaging(params: dict) -> str:
    number = params.get("originationPhoneNumberId", "")
    return number if number.startswith("arn:") else _arn("social-messaging", f"phone-number-id/{number.removeprefix('phone-number-id-')}")


def _bedrock(params: dict) -> str:
    model = params.get("modelId", "")
    if model.startswith("arn:"):
        return model
    if re.match(r"^(us|eu|apac|global|us-gov)\.", model):  # a cross-region inference profile
        return _arn("bedrock", f"inference-profile/{model}")
    return _arn("bedrock", f"foundation-model/{model}", account="")


def _secretsmanager(params: dict) -> str:
    secret = params.get("SecretId", "")
    return secret if secret.startswith("arn:") else _arn("secretsmanager", f"secret:{secret}-AbCdEf")


def _connection(operation: str, params: dict) -> str:
    """A WebSocket API connection: `<api id>/<stage>/<method>/@connections/<id>`. The API and stage
    are the client's endpoint, not parameters; the live fan-out is told them as LIVE_API_ID and
    LIVE_STAGE (coexist/wiring.py), read here from the calling process's environment."""
    method = {"PostToConnection": "POST", "GetConnection": "GET", "DeleteConnection": "DELETE"}[operation]
    api, stage = os.environ.get("LIVE_API_ID", "(unknown api)"), os.environ.get("LIVE_STAGE", "(unknown stage)")
    return _arn("execute-api", f"{api}/{stage}/{method}/@connections/{params['ConnectionId']}")


# Services whose calls AWS authorizes by a token in the request rather than by IAM: Connect's
# participant service takes the participant's or the connection's token.
NOT_IAM_AUTHORIZED = frozenset({"connectparticipant"})


def required_calls(model, params: dict) -> list[dict]:
    """What IAM checks for this operation: [{"action", "resource", "context"}], empty when AWS
    does not authorize the operation with IAM."""
    service = model.service_model.service_name
    if service in NOT_IAM_AUTHORIZED:
        return []
    if getattr(model, "auth_type", None) == "none" or "smithy.api#noAuth" in (getattr(model, "auth", None) or []):
        return []
    operation = model.name
    prefix = IAM_PREFIX.get(service, service)
    action = ACTION.get((service, operation), f"{prefix}:{operation}")
    if service == "dynamodb":
        return _dynamodb(operation, params)
    if service == "sqs":
        return [_call(action, queue_arn(params["QueueUrl"]) if "QueueUrl" in params else "*")]
    if service == "s3":
        return [_call(action, _s3(operation, params))]
    if service == "connect":
        return [_call(action, arn) for arn in _connect(operation, params)]
    if service == "stepfunctions":
        return [_call(action, _states(operation, params))]
    if service == "socialmessaging":
        return [_call(action, _social_messaging(params))]
    if service == "bedrock-runtime":
        return [_call(action, _bedrock(params))]
    if service == "lexv2-runtime":
        return [_call(action, _arn("lex", f"bot-alias/{params.get('botId')}/{params.get('botAliasId')}"))]
    if service == "secretsmanager":
        return [_call(action, _secretsmanager(params))]
    if service == "events" and operation == "PutEvents":
        buses = {entry.get("EventBusName") or "default" for entry in params.get("Entries", [])}
        return [_call(action, bus if bus.startswith("arn:") else _arn("events", f"event-bus/{bus}")) for bus in sorted(buses)]
    if service == "scheduler" and "Name" in params:
        return [_call(action, _arn("scheduler", f"schedule/{params.get('GroupName') or 'default'}/{params['Name']}"))]
    if service == "lambda" and "FunctionName" in params:
        name = params["FunctionName"]
        return [_call(action, name if name.startswith("arn:") else _arn("lambda", f"function:{name}"))]
    if service == "apigatewaymanagementapi":
        return [_call(action, _connection(operation, params))]
    if service == "sns" and "TopicArn" in params:
        return [_call(action, params["TopicArn"])]
    return [_call(action, "*")]  # e.g. cloudwatch:PutMetricData, xray:PutTraceSegments: no resource-level permissions


# ---- from the emulated account's names to the deployed ones ----------------------------------------

_IGNORED_ENV = ("AWS_", "POWERTOOLS_", "PYTHON", "PATH", "HOME", "COEXIST_AWS_CALL_LOG")


def resource_key(value: str) -> str:
    """The token by which an environment variable's value appears inside an ARN: a queue URL's
    queue name, an ARN's resource name, anything else as it is (a table or bucket name, an id)."""
    if value.startswith(("https://", "http://")):
        return value.rstrip("/").rsplit("/", 1)[-1]
    if value.startswith("arn:"):
        return re.split(r"[:/]", value)[-1]
    return value


def arn_tokens(arn: str) -> list[str]:
    """The names inside an ARN's resource part (after service, region and account)."""
    if not arn.startswith("arn:"):
        return []
    resource = arn.split(":", 5)[5] if arn.count(":") >= 5 else ""
    return [token for token in re.split(r"[:/]", resource) if token]


def bindings_for(arn: str, environ: os._Environ | dict) -> dict[str, str]:
    """The environment variables that name a resource inside `arn`, with the token they stand for.

    The emulated account and the deployed stacks name resources differently (`coexist-test-chats`,
    `coexist-prod-chats`) but hand them to the functions under the same variable: that is how
    the contract test translates a recorded ARN into the deployed one.
    """
    named = _names_by_token(frozenset(environ.items()))
    return {name: token for token in set(arn_tokens(arn)) for name in named.get(token, ())}


@lru_cache(maxsize=16)
def _names_by_token(environ: frozenset) -> dict[str, tuple[str, ...]]:
    """Each token an environment's variables stand for, with their names: worked out once per
    environment, not for every call recorded (a process sees a handful of environments)."""
    named: dict[str, list[str]] = {}
    for name, value in sorted(environ):
        if name.startswith(_IGNORED_ENV) or len(value) < 3:
            continue
        named.setdefault(resource_key(value), []).append(name)
    return {token: tuple(names) for token, names in named.items()}
