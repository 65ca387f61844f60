"""Conversations stack: the workflow from the one definition file, its function, who may start and
wake it, its alarms, and the Amazon Connect handoff only when configured."""

from __future__ import annotations

import json
import re

import pytest
from aws_cdk.assertions import Capture, Match, Template
from coexist import resources
from coexist.conversation.definition import FUNCTION_PLACEHOLDER, definition_path, render

from stacks.constructs.shared_layer import FUNCTIONS, ROOT

from .conftest import CONNECT, CONVERSATION, actions_of_role, import_of, statements_of_role

pytestmark = pytest.mark.infra

TASK_TOKENS = {"states:SendTaskSuccess", "states:SendTaskFailure"}
LAMBDA_TASK = re.compile(r"^arn:aws:states:::lambda:invoke(\.waitForTaskToken)?$")


@pytest.fixture(scope="module")
def ids(synthesised) -> dict[str, str]:
    c, i = synthesised.stacks.conversations, synthesised.stacks.ingress
    return {
        "machine": synthesised.logical_id(c.state_machine),
        "machine_role": synthesised.logical_id(c.state_machine.role),
        "log_group": synthesised.logical_id(c.log_group),
        "function": synthesised.logical_id(c.conversation.function),
        "function_role": synthesised.logical_id(c.conversation.role),
        "ingest_role": synthesised.logical_id(i.ingest.role),
        "api_role": synthesised.logical_id(i.agent_api.role),
        "ingest": synthesised.logical_id(i.ingest.function),
        "api": synthesised.logical_id(i.agent_api.function),
        "inbound": synthesised.logical_id(i.inbound.queue),
        "inbound_dlq": synthesised.logical_id(i.inbound.dead_letters),
    }


@pytest.fixture(scope="module")
def machine(synthesised, ids) -> dict:
    return synthesised.conversations.to_json()["Resources"][ids["machine"]]["Properties"]


@pytest.fixture(scope="module")
def alarm_topic(synthesised) -> dict:
    topic_id = synthesised.logical_id(synthesised.stacks.ingress.alarms)
    for output in synthesised.ingress.to_json()["Outputs"].values():
        if output["Value"] == {"Ref": topic_id}:
            return {"Fn::ImportValue": output["Export"]["Name"]}
    raise AssertionError("the ingress stack does not export its alarm topic")


def _state_machine_arn(name: str) -> dict:
    return {"Fn::Join": ["", [
        "arn:", {"Ref": "AWS::Partition"}, ":states:", {"Ref": "AWS::Region"}, ":", {"Ref": "AWS::AccountId"},
        f":stateMachine:{name}",
    ]]}


def _env(template: Template, function_id: str) -> dict:
    return template.to_json()["Resources"][function_id]["Properties"]["Environment"]["Variables"]


def _tables_with(statements: list[dict], action: str) -> set[str]:
    found = set()
    for statement in statements:
        if action in statement["Action"]:
            found |= set(re.findall(r":table/([a-z0-9-]+)\"", json.dumps(statement["Resource"])))
    return found


def _tasks(states: dict) -> dict[str, dict]:
    """Every Task state of a definition, nested branches included."""
    found = {}
    for name, state in states.items():
        if state["Type"] == "Task":
            found[name] = state
        for branch in state.get("Branches", []):
            found.update(_tasks(branch["States"]))
        if "Iterator" in state or "ItemProcessor" in state:
            found.update(_tasks((state.get("Iterator") or state["ItemProcessor"])["States"]))
    return found


def _lambda_tasks(states: dict) -> dict[str, dict]:
    return {name: t for name, t in _tasks(states).items() if LAMBDA_TASK.match(t["Resource"])}


# --- the state machine ---------------------------------------------------------------------------


def test_a_standard_state_machine_with_its_fixed_name(synthesised, machine):
    assert machine["StateMachineType"] == "STANDARD"
    assert machine["StateMachineName"] == synthesised.stacks.config.conversation_state_machine_name == "coexist-dev-conversation"
    synthesised.conversations.resource_count_is("AWS::StepFunctions::StateMachine", 1)


def test_logs_every_transition_without_execution_data_to_an_encrypted_group(synthesised, machine, ids, cmk):
    logging = machine["LoggingConfiguration"]
    assert logging["Level"] == "ALL"
    assert logging["IncludeExecutionData"] is False  # inputs and outputs hold the customers' words
    assert logging["Destinations"] == [{"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": [ids["log_group"], "Arn"]}}}]
    group = synthesised.conversations.to_json()["Resources"][ids["log_group"]]
    assert group["Properties"]["KmsKeyId"] == cmk
    assert group["Properties"]["LogGroupName"].startswith("/aws/vendedlogs/states/")
    assert group["Properties"]["RetentionInDays"] >= synthesised.stacks.config.log_retention_days
    assert group["DeletionPolicy"] == "Retain"


def test_traced_and_encrypted_with_the_cmk(machine, cmk):
    assert machine["TracingConfiguration"] == {"Enabled": True}
    assert machine["EncryptionConfiguration"]["Type"] == "CUSTOMER_MANAGED_KMS_KEY"
    assert machine["EncryptionConfiguration"]["KmsKeyId"] == cmk


def test_every_lambda_task_invokes_the_conversation_function(machine, ids):
    """The definition is deployed from the repository file with one substitution, which names the
    conversation function: resolve it as CloudFormation will and look at every Lambda task."""
    function_arn = Capture()
    Template.from_json({"Resources": {"M": {"Type": "AWS::StepFunctions::StateMachine", "Properties": machine}}}).has_resource_properties(
        "AWS::StepFunctions::StateMachine", {"DefinitionSubstitutions": {FUNCTION_PLACEHOLDER: function_arn}}
    )
    assert function_arn.as_object() == {"Fn::GetAtt": [ids["function"], "Arn"]}
    assert set(machine["DefinitionSubstitutions"]) == {FUNCTION_PLACEHOLDER}
    deployed = json.loads(render("<conversation-function-arn>"))
    tasks = _lambda_tasks(deployed["States"])
    assert len(tasks) >= 10
    # The role may invoke that function and nothing else: a task of any other service would fail.
    assert tasks.keys() == _tasks(deployed["States"]).keys()
    assert {name: t["Parameters"]["FunctionName"] for name, t in tasks.items()} == dict.fromkeys(tasks, "<conversation-function-arn>")
    # Nothing else is left for CloudFormation to substitute (it would refuse the template).
    assert not re.findall(r"\$\{(?!" + FUNCTION_PLACEHOLDER + r"\})[A-Za-z0-9_]+\}", definition_path().read_text())


def test_the_definition_is_the_repository_file_unchanged(synthesised, machine):
    """CDK uploads the file as an asset; CloudFormation substitutes the function ARN at deploy time."""
    location = machine["DefinitionS3Location"]
    assert "DefinitionString" not in machine
    staged = synthesised.outdir / f"asset.{location['Key']}"
    source = ROOT / resources.CONVERSATION_DEFINITION
    assert staged.read_bytes() == source.read_bytes()
    staged_states, file_states = json.loads(staged.read_text())["States"], json.loads(source.read_text())["States"]
    assert set(staged_states) == set(file_states)
    # The layer's render (local mode, tests) reads the same file and fills the same placeholder.
    assert json.loads(render("x"))["States"].keys() == file_states.keys()


def test_the_state_machine_role_can_invoke_only_the_conversation_function(synthesised, ids):
    statements = statements_of_role(synthesised.conversations, ids["machine_role"])
    invokes = [s for s in statements if any(a.startswith("lambda:") for a in s["Action"])]
    assert invokes == [{"Action": ["lambda:InvokeFunction"], "Effect": "Allow", "Resource": {"Fn::GetAtt": [ids["function"], "Arn"]}}]
    role = synthesised.conversations.to_json()["Resources"][ids["machine_role"]]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "states.amazonaws.com"}
    assert "ManagedPolicyArns" not in role
    services = {a.split(":")[0] for a in actions_of_role(synthesised.conversations, ids["machine_role"])}
    assert services == {"lambda", "logs", "xray", "kms"}
    # Besides ingest and the function itself (a bot turn after the first, below), no other role
    # anywhere may invoke a function (Scheduler's role for reminders invokes the reminders function
    # alone: tests/infrastructure/test_reminders_stack.py; its role for the idle timers, this
    # function alone: below).
    reminders_scheduler = synthesised.logical_id(synthesised.stacks.outbound.reminders.scheduler_role)
    idle_scheduler = synthesised.logical_id(synthesised.stacks.conversations.idle_scheduler_role)
    bot_loop = {("ingress", ids["ingest_role"]), ("conversations", ids["function_role"]), ("conversations", idle_scheduler)}
    for stack in ("ingress", "outbound", "conversations"):
        template = getattr(synthesised, stack)
        for name, policy in template.find_resources("AWS::IAM::Policy").items():
            roles = json.dumps(policy["Properties"]["Roles"])
            if ids["machine_role"] in roles or (stack == "outbound" and reminders_scheduler in roles):
                continue
            if any(role in roles for where, role in bot_loop if where == stack):
                continue
            assert "lambda:InvokeFunction" not in json.dumps(policy), (stack, name)


def test_ingest_and_the_conversation_function_invoke_the_conversation_function_alone_by_its_fixed_name(synthesised, ids):
    config = synthesised.stacks.config
    function = synthesised.conversations.to_json()["Resources"][ids["function"]]["Properties"]
    assert function["FunctionName"] == config.conversation_function_name == "coexist-dev-conversation"
    for stack, role in (("ingress", ids["ingest_role"]), ("conversations", ids["function_role"])):
        invokes = [s for s in statements_of_role(getattr(synthesised, stack), role) if any(a.startswith("lambda:") for a in s["Action"])]
        assert [s["Action"] for s in invokes] == [["lambda:InvokeFunction"]], stack
        [statement] = invokes
        arn = "".join(part if isinstance(part, str) else json.dumps(part) for part in statement["Resource"]["Fn::Join"][1])
        assert arn.endswith(f":lambda:{json.dumps({'Ref': 'AWS::Region'})}:{json.dumps({'Ref': 'AWS::AccountId'})}"
                            f":function:{config.conversation_function_name}"), (stack, arn)
    ingest = synthesised.ingress.to_json()["Resources"][ids["ingest"]]["Properties"]["Environment"]["Variables"]
    assert ingest[resources.CONVERSATION_FUNCTION_ENV] == config.conversation_function_name
    assert function["Environment"]["Variables"][resources.CONVERSATION_FUNCTION_ENV] == config.conversation_function_name


def test_a_bot_turn_lambda_could_not_run_is_parked_with_an_alarm(synthesised, ids):
    template = synthesised.conversations
    [config_] = template.find_resources("AWS::Lambda::EventInvokeConfig").values()
    assert config_["Properties"]["MaximumRetryAttempts"] == 2 and config_["Properties"]["MaximumEventAgeInSeconds"] == 3600
    function = template.to_json()["Resources"][ids["function"]]["Properties"]
    dlq = function["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0]
    queue = template.to_json()["Resources"][dlq]["Properties"]
    assert "KmsMasterKeyId" in queue and queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    watched = [a for a in template.find_resources("AWS::CloudWatch::Alarm").values()
               if dlq in json.dumps(a["Properties"].get("Dimensions", []))]
    assert watched and all(a["Properties"]["AlarmActions"] for a in watched)


def test_the_state_machine_uses_the_key_only_for_its_own_data(synthesised, ids, cmk):
    kms = [s for s in statements_of_role(synthesised.conversations, ids["machine_role"]) if any(a.startswith("kms:") for a in s["Action"])]
    assert kms and all(s["Resource"] == cmk for s in kms)
    contexts = [s["Condition"]["StringEquals"] for s in kms]
    assert {"kms:EncryptionContext:aws:states:stateMachineArn": _state_machine_arn("coexist-dev-conversation")} in contexts


def test_the_key_lets_log_delivery_read_the_workflow_logs(synthesised):
    key = next(iter(synthesised.data.find_resources("AWS::KMS::Key").values()))
    statements = {s.get("Sid"): s for s in key["Properties"]["KeyPolicy"]["Statement"]}
    assert statements["LogDeliveryReadsStateMachineLogs"]["Principal"] == {"Service": "delivery.logs.amazonaws.com"}
    assert statements["LogDeliveryReadsStateMachineLogs"]["Action"] == "kms:Decrypt"
    # Connect publishes nothing unless configured.
    assert "connect.amazonaws.com" not in json.dumps(key["Properties"]["KeyPolicy"])


# --- who starts and wakes it ---------------------------------------------------------------------


@pytest.mark.parametrize("role", ["ingest_role", "api_role", "function_role"])
def test_whoever_ends_a_bot_phase_may_start_executions_of_exactly_that_state_machine(synthesised, ids, role):
    """The bot phase runs outside the workflow; whoever ends it with a person or routing starts the
    conversation's execution there: ingest (an echo), the API (an agent's reply), the function (the
    bot escalated or failed)."""
    template = synthesised.conversations if role == "function_role" else synthesised.ingress
    starts = [s for s in statements_of_role(template, ids[role]) if "states:StartExecution" in s["Action"]]
    assert starts == [{"Action": ["states:StartExecution"], "Effect": "Allow", "Resource": _state_machine_arn("coexist-dev-conversation")}]
    assert "states:StartExecution" not in json.dumps(synthesised.outbound.to_json())
    env = _env(synthesised.conversations, ids["function"])
    assert env[resources.CONVERSATION_STATE_MACHINE_ENV] == _state_machine_arn("coexist-dev-conversation")


@pytest.mark.parametrize("role, actions", [
    ("ingest_role", ["scheduler:CreateSchedule", "scheduler:DeleteSchedule", "scheduler:UpdateSchedule"]),
    ("function_role", ["scheduler:CreateSchedule", "scheduler:DeleteSchedule", "scheduler:UpdateSchedule"]),
    ("api_role", ["scheduler:DeleteSchedule"]),
])
def test_the_idle_timers_are_made_moved_and_ended_in_their_own_group_only(synthesised, ids, role, actions):
    template = synthesised.conversations if role == "function_role" else synthesised.ingress
    statements = statements_of_role(template, ids[role])
    idle = [s for s in statements if any(a.startswith("scheduler:") for a in s["Action"]) and "conversation-idle" in json.dumps(s["Resource"])]
    [statement] = idle
    assert sorted(statement["Action"]) == actions
    assert json.dumps(statement["Resource"]).endswith(':schedule/coexist-dev-conversation-idle/*"]]}')
    passes = [s for s in statements if "iam:PassRole" in s["Action"] and "conversation-idle-scheduler" in json.dumps(s["Resource"])]
    # A schedule made or moved names Scheduler's role; deleting one does not.
    assert len(passes) == (1 if "scheduler:UpdateSchedule" in actions else 0)
    for passing in passes:
        assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}


def test_the_idle_timers_invoke_the_conversation_function_alone_and_park_what_fails(synthesised):
    stack = synthesised.stacks.conversations
    template = synthesised.conversations
    role_id = synthesised.logical_id(stack.idle_scheduler_role)
    role = template.to_json()["Resources"][role_id]["Properties"]
    assert role["RoleName"] == "coexist-dev-conversation-idle-scheduler"
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert "schedule/coexist-dev-conversation-idle/*" in json.dumps(trust["Condition"]["ArnLike"])
    invokes = [s for s in statements_of_role(template, role_id) if "lambda:InvokeFunction" in s["Action"]]
    [invoke] = invokes
    assert json.dumps(invoke["Resource"]).endswith(':function:coexist-dev-conversation"]]}')
    [group] = template.find_resources("AWS::Scheduler::ScheduleGroup").values()
    assert group["Properties"]["Name"] == "coexist-dev-conversation-idle"
    dlq = template.to_json()["Resources"][synthesised.logical_id(stack.idle_dead_letters)]["Properties"]
    assert dlq["QueueName"] == "coexist-dev-conversation-idle-dlq" and "KmsMasterKeyId" in dlq
    env = _env(synthesised.ingress, synthesised.logical_id(synthesised.stacks.ingress.ingest.function))
    assert env[resources.IDLE_SCHEDULE_GROUP_ENV] == "coexist-dev-conversation-idle"


def test_ingest_and_the_api_are_told_the_state_machine_by_its_name(synthesised, ids):
    for function in ("ingest", "api"):
        env = _env(synthesised.ingress, ids[function])
        assert env[resources.CONVERSATION_STATE_MACHINE_ENV] == _state_machine_arn("coexist-dev-conversation"), function
        assert env["COEXIST_CONVERSATION"] == "{}", function  # the same cool-down as the workflow's steps


def test_the_api_wakes_tasks_and_starts_an_execution_only_when_an_agent_takes_over_a_bot_phase(synthesised, ids):
    actions = actions_of_role(synthesised.ingress, ids["api_role"])
    assert TASK_TOKENS <= actions
    # An erasure stops the conversation still running on the chat; an agent's reply to a bot phase
    # starts its execution at the takeover (above).
    assert not {a for a in actions if a.startswith("states:")} - TASK_TOKENS - {"states:StopExecution", "states:StartExecution"}


@pytest.mark.parametrize("role", ["ingest_role", "api_role"])
def test_ingest_and_the_api_stop_only_the_conversation_state_machines_executions(synthesised, ids, role):
    """Ingest stops the conversation a merge superseded; the API, the one running on an erased chat."""
    stops = [s for s in statements_of_role(synthesised.ingress, ids[role]) if "states:StopExecution" in s["Action"]]
    executions = {"Fn::Join": ["", [
        "arn:", {"Ref": "AWS::Partition"}, ":states:", {"Ref": "AWS::Region"}, ":", {"Ref": "AWS::AccountId"},
        ":execution:coexist-dev-conversation:*",
    ]]}
    assert stops == [{"Action": ["states:StopExecution"], "Effect": "Allow", "Resource": executions}]


@pytest.mark.parametrize("role", ["ingest_role", "api_role", "function_role"])
def test_task_tokens_are_the_only_unscoped_step_functions_grant(synthesised, ids, role):
    template = synthesised.conversations if role == "function_role" else synthesised.ingress
    tokens = [s for s in statements_of_role(template, ids[role]) if TASK_TOKENS & set(s["Action"])]
    (statement,) = tokens
    # SendTaskSuccess/SendTaskFailure have no resource type in IAM: the token names the task.
    assert statement["Resource"] == "*"
    # The heartbeat runs the bot's next turn (BotLoop): ingest and the turn itself, not the agent API.
    heartbeat = {"states:SendTaskHeartbeat"} if role in ("ingest_role", "function_role") else set()
    assert set(statement["Action"]) - TASK_TOKENS == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"} | heartbeat


def test_the_webhook_cannot_touch_the_workflow(synthesised):
    role = synthesised.logical_id(synthesised.stacks.ingress.webhook.role)
    assert not {a for a in actions_of_role(synthesised.ingress, role) if a.startswith("states:")}


def test_the_stacks_deploy_in_order_without_a_cycle(synthesised):
    s = synthesised.stacks
    assert {d.stack_name for d in s.conversations.dependencies} == {s.data.stack_name, s.ingress.stack_name, s.outbound.stack_name}
    for earlier in (s.data, s.ingress, s.outbound):
        assert s.conversations.stack_name not in {d.stack_name for d in earlier.dependencies}
    # The earlier stacks know the state machine by name only: nothing of this stack is imported.
    for earlier in ("data", "ingress", "outbound"):
        assert "Coexist-dev-Conversations" not in json.dumps(getattr(synthesised, earlier).to_json()), earlier


# --- the conversation function -------------------------------------------------------------------


def test_conversation_function_settings(synthesised, ids):
    config = synthesised.stacks.config
    function = synthesised.conversations.to_json()["Resources"][ids["function"]]["Properties"]
    assert function["Timeout"] == 60 and function["MemorySize"] == 512
    assert function["TracingConfig"] == {"Mode": "Active"}
    env = function["Environment"]["Variables"]
    wanted = (resources.CHATS, resources.MESSAGES, resources.CONTACTS, resources.NUMBERS, resources.ACCOUNTS,
              resources.TEMPLATES, resources.AGENTS)
    assert {spec.env_var: env[spec.env_var] for spec in wanted} == {s.env_var: config.table_name(s.logical_id) for s in wanted}
    assert resources.THROTTLE.env_var not in env
    assert env[resources.OUTBOUND_QUEUE_ENV]["Fn::Join"][1][-1] == f"/{config.outbound_queue_name}"
    assert env["COEXIST_NUMBERS"] == "{}" and env["COEXIST_CONVERSATION"] == "{}"
    assert env["POWERTOOLS_SERVICE_NAME"] == "coexist-conversation"
    # The bot rules ship in the layer.
    assert "COEXIST_BOT_RULES" not in env
    assert not {k for k in env if k.startswith("CONNECT_")}


def test_conversation_function_data_access(synthesised, ids):
    config = synthesised.stacks.config
    statements = statements_of_role(synthesised.conversations, ids["function_role"])
    names = lambda *specs: {config.table_name(s.logical_id) for s in specs}  # noqa: E731
    writes = names(resources.CHATS, resources.TASK_TOKENS, resources.AGENTS, resources.MESSAGES, resources.CONTACTS)
    assert _tables_with(statements, "dynamodb:PutItem") == writes
    assert _tables_with(statements, "dynamodb:UpdateItem") == writes
    assert _tables_with(statements, "dynamodb:GetItem") == writes | names(resources.NUMBERS, resources.ACCOUNTS, resources.TEMPLATES)


def test_conversation_function_sends_through_the_outbox_only(synthesised, ids):
    config = synthesised.stacks.config
    statements = statements_of_role(synthesised.conversations, ids["function_role"])
    (sqs,) = [s for s in statements if any(a.startswith("sqs:") for a in s["Action"])]
    assert "sqs:SendMessage" in sqs["Action"] and "sqs:ReceiveMessage" not in sqs["Action"]
    # The outbound queue, and the dead letters of its own asynchronous invocations (Lambda sends
    # those with the function's role).
    outbound, dead_letters = sqs["Resource"] if isinstance(sqs["Resource"][0], dict) and "Fn::Join" in sqs["Resource"][0] else sqs["Resource"][::-1]
    assert json.dumps(outbound).endswith(f':{config.outbound_queue_name}"]]}}')
    function = synthesised.conversations.to_json()["Resources"][ids["function"]]["Properties"]
    assert dead_letters == function["DeadLetterConfig"]["TargetArn"]
    rendered = json.dumps(statements)
    # No way into the inbound queue, its DLQ or the webhook archive.
    assert not {a for s in statements for a in s["Action"] if a.startswith("s3:")}
    assert "archive" not in rendered and config.archive_bucket_name("x", "y").split("-x-")[0] not in rendered
    assert ids["inbound"] not in rendered and ids["inbound_dlq"] not in rendered
    assert "secretsmanager" not in rendered  # it never calls the Graph API itself


def test_no_bot_provider_grant_without_a_bot_configured(synthesised, ids):
    actions = actions_of_role(synthesised.conversations, ids["function_role"])
    assert not {a for a in actions if a.startswith(("lex:", "bedrock:", "connect:"))}


def test_the_handler_reports_metrics_under_the_alarmed_service_name():
    source = (FUNCTIONS / "conversation" / "handler.py").read_text()
    assert set(re.findall(r"\bpowertools\(\s*[\"']([^\"']+)[\"']", source)) == {"coexist-conversation"}


# --- alarms --------------------------------------------------------------------------------------


def test_a_customer_waiting_with_nobody_assigned_raises_an_alarm(synthesised, alarm_topic):
    synthesised.conversations.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": resources.METRICS_NAMESPACE,
            "MetricName": "ConversationUnassigned",
            "Dimensions": [{"Name": "service", "Value": "coexist-conversation"}],
            "Statistic": "Sum",
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [alarm_topic],
        },
    )


def test_a_failed_execution_raises_an_alarm(synthesised, ids, alarm_topic):
    synthesised.conversations.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/States",
            "MetricName": "ExecutionsFailed",
            "Dimensions": [{"Name": "StateMachineArn", "Value": {"Ref": ids["machine"]}}],
            "Statistic": "Sum",
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "AlarmActions": [alarm_topic],
        },
    )


# --- Amazon Connect handoff: only when configured ------------------------------------------------


def test_no_connect_handoff_unless_configured(synthesised):
    assert synthesised.stacks.conversations.connect is None
    synthesised.conversations.resource_count_is("AWS::SNS::Topic", 0)
    synthesised.conversations.resource_count_is("AWS::Lambda::Function", 1)  # the conversation function
    assert "connect" not in json.dumps(synthesised.conversations.to_json()["Resources"]).lower().replace("connection", "")


@pytest.fixture(scope="module")
def handoff(customised) -> tuple[Template, object]:
    stack = customised.conversations
    assert stack.connect is not None
    return Template.from_stack(stack), stack


def _lid(stack, construct) -> str:
    cfn = construct if construct.node.default_child is None else construct.node.default_child
    return stack.resolve(cfn.logical_id)


def test_connect_streams_into_an_encrypted_topic_it_alone_may_publish_to(handoff):
    template, stack = handoff
    topic_id = _lid(stack, stack.connect.topic)
    topic = template.to_json()["Resources"][topic_id]["Properties"]
    assert "KmsMasterKeyId" in topic
    instance = {"Fn::Join": ["", [
        "arn:", {"Ref": "AWS::Partition"}, ":connect:", {"Ref": "AWS::Region"}, ":", {"Ref": "AWS::AccountId"},
        f":instance/{CONNECT['instance_id']}",
    ]]}
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "Topics": [{"Ref": topic_id}],
            "PolicyDocument": {"Statement": Match.array_with([{
                "Sid": "ConnectStreamsChatEvents",
                "Effect": "Allow",
                "Principal": {"Service": "connect.amazonaws.com"},
                "Action": "sns:Publish",
                "Resource": {"Ref": topic_id},
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                    "ArnLike": {"aws:SourceArn": [instance, {"Fn::Join": ["", [*instance["Fn::Join"][1][:-1], f":instance/{CONNECT['instance_id']}/*"]]}]},
                },
            }])},
        },
    )
    events_id = _lid(stack, stack.connect.events.function)
    template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "lambda", "TopicArn": {"Ref": topic_id}, "Endpoint": {"Fn::GetAtt": [events_id, "Arn"]}}
    )


def test_the_key_lets_connect_publish_encrypted_events_when_configured(customised):
    key = next(iter(Template.from_stack(customised.data).find_resources("AWS::KMS::Key").values()))
    (publishers,) = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if s.get("Sid") == "ServicesPublishEncryptedMessages"]
    assert "connect.amazonaws.com" in publishers["Principal"]["Service"]
    assert publishers["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_connect_events_function_grants(handoff, customised):
    template, stack = handoff
    config = customised.config
    events = stack.connect.events
    statements = statements_of_role(template, _lid(stack, events.role))
    actions = {a for s in statements for a in s["Action"]}
    names = lambda *specs: {config.table_name(s.logical_id) for s in specs}  # noqa: E731
    assert _tables_with(statements, "dynamodb:PutItem") == names(resources.CHATS, resources.MESSAGES, resources.TASK_TOKENS)
    assert {a for a in actions if a.startswith("states:")} == {"states:SendTaskSuccess"}
    assert "sqs:SendMessage" in actions and "sqs:ReceiveMessage" not in actions
    assert not {a for a in actions if a.startswith(("s3:", "connect:", "lambda:", "secretsmanager:"))}
    # SNS invokes it asynchronously: failures are parked in its own encrypted DLQ, with an alarm.
    function = template.to_json()["Resources"][_lid(stack, events.function)]["Properties"]
    dlq_id = _lid(stack, stack.connect.dead_letters)
    assert function["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}}
    assert "KmsMasterKeyId" in template.to_json()["Resources"][dlq_id]["Properties"]
    template.has_resource_properties("AWS::CloudWatch::Alarm", {"Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}}]})
    env = function["Environment"]["Variables"]
    assert env["CONNECT_INSTANCE_ID"] == CONNECT["instance_id"] and env["POWERTOOLS_SERVICE_NAME"] == "coexist-connect-events"


def test_the_conversation_function_may_hand_over_to_the_configured_instance_only(handoff):
    template, stack = handoff
    statements = statements_of_role(template, _lid(stack, stack.conversation.role))
    connect = [s for s in statements if any(a.startswith("connect:") for a in s["Action"])]
    by_action = {a: s["Resource"] for s in connect for a in s["Action"]}
    # Exactly what the handoff calls: DescribeContact is never called, so it is not granted.
    assert set(by_action) == {"connect:StartChatContact", "connect:StartContactStreaming", "connect:StopContact"}
    for action, resource in by_action.items():
        assert f":instance/{CONNECT['instance_id']}/contact/*" in json.dumps(resource), action
        assert '"*"' not in json.dumps(resource)
    assert f"/contact-flow/{CONNECT['contact_flow_id']}" in json.dumps(by_action["connect:StartChatContact"])
    # Streaming is authorized on the instance too: its exact ARN, no wildcard.
    instance = [r for r in by_action["connect:StartContactStreaming"] if "/contact" not in json.dumps(r)]
    assert len(instance) == 1 and json.dumps(instance[0]).endswith(f':instance/{CONNECT["instance_id"]}"]]}}')
    env = _env(template, _lid(stack, stack.conversation.function))
    assert env["CONNECT_INSTANCE_ID"] == CONNECT["instance_id"]
    assert env["CONNECT_CONTACT_FLOW_ID"] == CONNECT["contact_flow_id"]
    assert env["CONNECT_STREAMING_TOPIC_ARN"] == {"Ref": _lid(stack, stack.connect.topic)}


def test_ingest_may_end_contacts_of_the_configured_connect_instance_only_and_only_when_configured(customised, synthesised, ids):
    """A merge that supersedes a conversation held on Amazon Connect ends its contact from ingest."""
    stack = customised.ingress
    statements = statements_of_role(Template.from_stack(stack), _lid(stack, stack.ingest.role))
    connect = [s for s in statements if any(a.startswith("connect:") for a in s["Action"])]
    [statement] = connect
    assert statement["Action"] == ["connect:StopContact"]
    resource = json.dumps(statement["Resource"])
    assert resource.endswith(f':instance/{CONNECT["instance_id"]}/contact/*"]]}}') and '"*"' not in resource
    assert not {a for a in actions_of_role(synthesised.ingress, ids["ingest_role"]) if a.startswith("connect:")}


# --- settings of the customised stage ------------------------------------------------------------


def test_conversation_settings_reach_the_workflow_and_its_signals(customised):
    ingress, conversations = Template.from_stack(customised.ingress), Template.from_stack(customised.conversations)
    stack = customised.conversations
    assert json.loads(_env(conversations, _lid(stack, stack.conversation.function))["COEXIST_CONVERSATION"]) == CONVERSATION
    for function in (customised.ingress.ingest.function, customised.ingress.agent_api.function):
        env = _env(ingress, _lid(customised.ingress, function))
        assert json.loads(env["COEXIST_CONVERSATION"]) == CONVERSATION
        assert env[resources.CONVERSATION_STATE_MACHINE_ENV] == _state_machine_arn("coexist-prod-conversation")


def test_lex_and_bedrock_grants_name_the_configured_bots_only(customised):
    stack = customised.conversations
    statements = statements_of_role(Template.from_stack(stack), _lid(stack, stack.conversation.role))
    (lex,) = [s for s in statements if "lex:RecognizeText" in s["Action"]]
    assert lex["Action"] == ["lex:RecognizeText"]
    assert json.dumps(lex["Resource"]).endswith(':bot-alias/BOTID12345/ALIAS12345"]]}')
    (bedrock,) = [s for s in statements if "bedrock:InvokeModel" in s["Action"]]
    assert bedrock["Action"] == ["bedrock:InvokeModel"]
    rendered = sorted(json.dumps(r) for r in bedrock["Resource"])
    assert len(rendered) == 3
    # A foundation model in this stack's region (its ARN has no account).
    assert any(r.endswith('{"Ref": "AWS::Region"}, "::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"]]}') for r in rendered)
    assert any(":inference-profile/eu.amazon.nova-lite-v1:0" in r for r in rendered)
    assert any(r.endswith(':bedrock:*::foundation-model/amazon.nova-lite-v1:0"]]}') for r in rendered)
    assert not {a for s in statements for a in s["Action"] if a.startswith(("lex:", "bedrock:"))} - {"lex:RecognizeText", "bedrock:InvokeModel"}
