"""The conversation workflow: bot first, then a person (Step Functions, Standard), and its function.

Deployed last. Nothing is exchanged with the ingress stack but names: ingest and the agent API find
the state machine by its fixed name `coexist-<stage>-conversation` (as they find the tables and the
outbound queue), and this stack pages the ingress stack's alarm topic. The definition is the one file
`statemachine/conversation.asl.json`, with the one substitution that local mode and the tests apply too
(`coexist.conversation.definition`).
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Aws, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from coexist import resources
from coexist.conversation.definition import FUNCTION_PLACEHOLDER, definition_path
from constructs import Construct

from stacks.config import CoexistConfig
from stacks.constructs import alarms, nag
from stacks.constructs.connect_handoff import ConnectHandoff
from stacks.constructs.domain_tables import DomainTables
from stacks.constructs.log_groups import encrypted_log_group
from stacks.constructs.one_time_schedules import OneTimeScheduling, schedule_group
from stacks.constructs.outbound_queue import OutboundQueue
from stacks.constructs.service_function import BOT_LOOP_ACTIONS, ServiceFunction
from stacks.constructs.shared_layer import FUNCTIONS, ROOT, shared_layer
from stacks.data_stack import DataStack
from stacks.ingress_stack import IngressStack
from stacks.outbound_stack import OutboundStack

CONVERSATION_TIMEOUT_S = 60  # a bot turn may call Lex or Bedrock and enqueue several replies
# Bedrock inference profiles are named "<geography>.<model id>" and route to the model in any
# region of that geography.
_INFERENCE_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "us-gov.", "jp.", "au.", "ca.", "global.")


def idle_scheduling(config: CoexistConfig) -> OneTimeScheduling:
    """The bot phases' idle timers (coexist.conversation.workflow.IdleTimers): their group invokes the
    conversation function; ingest moves them, the API and the function end them."""
    return OneTimeScheduling(
        group=config.idle_schedule_group, function_name=config.conversation_function_name,
        role_name=config.idle_scheduler_role_name, dlq_name=config.idle_dlq_name,
        group_env=resources.IDLE_SCHEDULE_GROUP_ENV, target_env=resources.IDLE_TARGET_ARN_ENV,
        role_env=resources.IDLE_SCHEDULER_ROLE_ARN_ENV, dlq_env=resources.IDLE_DLQ_ARN_ENV,
    )


# Who makes, moves and ends the idle timers: ingest begins a bot phase and each customer message moves
# its timer; the conversation function moves it for a turn that finds messages waiting, and ends it
# with the phase; the agent API ends it when an agent takes the chat over (or a customer is erased).
IDLE_TIMER_ACTIONS = {
    "coexist-ingest": ("CreateSchedule", "UpdateSchedule", "DeleteSchedule"),
    "coexist-conversation": ("CreateSchedule", "UpdateSchedule", "DeleteSchedule"),
    "coexist-api": ("DeleteSchedule",),
}


def allow_idle_timers(function: ServiceFunction, config: CoexistConfig) -> None:
    idle_scheduling(config).allow(function, IDLE_TIMER_ACTIONS[function.service_name],
                                  "One idle timer per conversation, named by the conversation at run time, in the idle timers' own group only.")


class ConversationsStack(Stack):
    def __init__(
        self, scope: Construct, id: str, *, config: CoexistConfig, data: DataStack, ingress: IngressStack,
        outbound: OutboundStack, **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        key = data.key
        self.add_stack_dependency(data)
        self.add_stack_dependency(ingress)
        # The bot's replies go through the outbound queue: let it exist before the first conversation.
        self.add_stack_dependency(outbound)
        tables = DomainTables.referenced_by_name(self, config=config, key=key)
        self.layer = shared_layer(self)
        alarm_topic = ingress.alarms
        common = dict(layer=self.layer, key=key, log_retention_days=config.log_retention_days)
        self.outbound_queue = OutboundQueue.referenced_by_name(
            self, "OutboundQueue", queue_name=config.outbound_queue_name, key=key
        )

        def table_env(*specs) -> dict[str, str]:
            return {spec.env_var: tables[spec.env_var].table_name for spec in specs}

        # A bot turn invoked directly (BotLoop) that Lambda could not run: the customer's messages wait
        # unanswered until a person answers them from the inbox or, at the bot phase's idle timeout,
        # the conversation is handed to a person (ConversationSteps._lost_turn).
        self.turn_dead_letters = sqs.Queue(
            self, "BotTurnDeadLetters", encryption=sqs.QueueEncryption.KMS, encryption_master_key=key, enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        # One function for every task of the workflow; the step is the payload's `action`.
        self.conversation = ServiceFunction(
            self, "Conversation", code_dir=FUNCTIONS / "conversation", service="conversation",
            description="Conversation workflow steps: bot turns, takeover, routing to agents, close, survey",
            invoked_by="the conversation state machine's Lambda tasks, synchronously, with their own retries; a bot "
            "turn after the first, asynchronously, by ingest or the previous turn (one at a time per conversation)",
            function_name=config.conversation_function_name,
            timeout=Duration.seconds(CONVERSATION_TIMEOUT_S),
            memory_size=512,
            dead_letter_queue=self.turn_dead_letters,
            environment={
                "COEXIST_STAGE": config.stage,
                **table_env(
                    resources.CHATS, resources.MESSAGES, resources.CONTACTS, resources.NUMBERS,
                    resources.ACCOUNTS, resources.TEMPLATES, resources.AGENTS, resources.TASK_TOKENS,
                ),
                resources.OUTBOUND_QUEUE_ENV: self.outbound_queue.queue_url,
                **config.numbers_environment(),  # each number's bot
                **config.conversation_environment(),
                resources.CONVERSATION_FUNCTION_ENV: config.conversation_function_name,  # its own, for the next turn
            },
            # A bot turn that ends at once (a reply sent, nothing to wait for) completes its own task;
            # a turn that finds messages waiting at its end runs the next one (BotLoop).
            task_token_actions=BOT_LOOP_ACTIONS,
            **common,
        )
        # Lambda retries a turn that timed out or crashed, and the retry hands the customer to a person
        # (a turn's own errors fail its task at once); an hour-old turn is parked rather than
        # answering a customer long after the question.
        self.conversation.function.configure_async_invoke(retry_attempts=2, max_event_age=Duration.hours(1))
        self.turn_dead_letters.grant_send_messages(self.conversation.function)
        self.conversation.role.add_to_principal_policy(iam.PolicyStatement(
            actions=["lambda:InvokeFunction"], resources=[config.conversation_function_arn(self)]))
        alarms.on_any_dead_letter(
            self, "BotTurnDeadLettersAlarm", queue=self.turn_dead_letters, alarm_topic=alarm_topic,
            description="A bot turn could not run (Lambda failed it three times or it waited over an hour): the "
            "customer's last messages wait unanswered on the chat. Answer them from the inbox (docs/OPERATIONS.md).",
        )
        self.conversation.grant_tables(
            tables, config,
            # chats: conversation state and the tokens' references; task tokens: the tokens; agents:
            # routing and load; messages: the bot's replies (the outbox); contacts: the consent
            # ledger (opt-out and opt-in keywords).
            read_write=(resources.CHATS, resources.TASK_TOKENS, resources.AGENTS, resources.MESSAGES, resources.CONTACTS),
            read=(resources.NUMBERS, resources.ACCOUNTS, resources.TEMPLATES),
        )
        self.outbound_queue.grant_send_messages(self.conversation.function)
        self._grant_bots(config)

        self.state_machine = self._state_machine(config, key, common["log_retention_days"])
        # A bot phase that hands the customer on starts the conversation's execution (by the state
        # machine's name: the definition names this function, which cannot name it back by reference).
        state_machine_arn = self.format_arn(service="states", resource="stateMachine", resource_name=config.conversation_state_machine_name,
                                            arn_format=ArnFormat.COLON_RESOURCE_NAME)
        self.conversation.function.add_environment(resources.CONVERSATION_STATE_MACHINE_ENV, state_machine_arn)
        self.conversation.role.add_to_principal_policy(iam.PolicyStatement(actions=["states:StartExecution"], resources=[state_machine_arn]))
        # The bot phases' idle timers: one-time schedules that invoke this function.
        made = schedule_group(
            Construct(self, "IdleTimers"), names=idle_scheduling(config), function_arn=config.conversation_function_arn(self), key=key,
            alarm_topic=alarm_topic,
            role_description="EventBridge Scheduler's role for the bot phases' idle timers: invoke the conversation function, park failures",
            lost_description="A bot phase's idle timer could not invoke the conversation function (after Scheduler's retries): "
            "a conversation whose customer went quiet was not ended and still shows as live with the bot, or a lost bot turn "
            "was not handed to a person. Redrive it, or answer from the inbox; the parked message names the chat and the "
            "conversation (docs/OPERATIONS.md).",
            parked_because="the bot phases' idle timers (an invocation Scheduler gave up on)",
        )
        self.idle_timers, self.idle_dead_letters, self.idle_scheduler_role = made.group, made.dead_letters, made.scheduler_role

        self.unassigned_alarm = alarms.on_any_count(
            self, "ConversationUnassignedAlarm",
            metric=self.conversation.count_metric("ConversationUnassigned"),
            alarm_topic=alarm_topic,
            description="A customer is waiting with nobody assigned: every routing round found no available "
            "agent with the skill (or nobody accepted). Pick the chat up in the inbox, or set agents available.",
        )
        self.failed_alarm = alarms.on_any_count(
            self, "ConversationExecutionsFailedAlarm",
            metric=self.state_machine.metric_failed(period=Duration.minutes(5), statistic="Sum"),
            alarm_topic=alarm_topic,
            description="A conversation workflow execution failed: a customer's conversation stopped mid-way. "
            "The execution's history (Step Functions console) shows the failed step; data stays out of it.",
        )

        self.connect = None
        if config.connect:
            self.connect = ConnectHandoff(
                self, "ConnectHandoff", settings=config.connect, config=config, tables=tables,
                conversation=self.conversation, outbound_queue=self.outbound_queue, alarm_topic=alarm_topic, **common,
            )

    def _state_machine(self, config: CoexistConfig, key: kms.IKey, log_retention_days: int) -> sfn.StateMachine:
        # Execution history and logs would hold the customers' words: encrypted with the CMK, and
        # logs carry every state transition but never its input or output.
        self.log_group = encrypted_log_group(
            self, "WorkflowLogs", key=key, retention_days=log_retention_days,
            # Vended logs go under /aws/vendedlogs/ so one resource policy covers every such group.
            log_group_name=f"/aws/vendedlogs/states/{config.conversation_state_machine_name}",
        )
        # The key as an imported ARN: the key policy statement the log delivery needs is written by
        # the data stack itself, so this stack never adds to another stack's key policy.
        workflow_key = kms.Key.from_key_arn(self, "WorkflowKey", key.key_arn)
        role = iam.Role(
            self, "ConversationWorkflowRole",
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            description="coexist-conversation state machine: invoke the conversation function, log, trace",
        )
        machine = sfn.StateMachine(
            self, "ConversationWorkflow",
            state_machine_name=config.conversation_state_machine_name,
            state_machine_type=sfn.StateMachineType.STANDARD,  # waits of hours, exactly-once steps
            definition_body=sfn.DefinitionBody.from_file(str(definition_path(ROOT))),
            definition_substitutions={FUNCTION_PLACEHOLDER: self.conversation.function.function_arn},
            role=role,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
            tracing_enabled=True,
            encryption_configuration=sfn.CustomerManagedEncryptionConfiguration(workflow_key),
        )
        # Exactly the function the definition's tasks name: not its versions or aliases (`:*`).
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[self.conversation.function.function_arn])
        )
        policy = role.node.find_child("DefaultPolicy")
        nag.acknowledge(
            policy, "AwsSolutions-IAM5[Resource::*]",
            "CloudWatch Logs log-delivery actions (Create/Get/Update/Delete/ListLogDelivery, resource policies) "
            "and X-Ray PutTraceSegments/PutTelemetryRecords/GetSampling* have no resource-level permissions.",
        )
        nag.acknowledge(
            policy, "HIPAA.Security-IAMNoInlinePolicy",
            "The state machine role's own policy, written by CDK from its logging, tracing and encryption "
            "settings plus the one invoke grant; it belongs to this role alone and is deleted with it.",
        )
        return machine

    def _grant_bots(self, config: CoexistConfig) -> None:
        """Amazon Lex V2 and Amazon Bedrock, only for the bots a number's settings name."""
        lex_aliases, models = set(), set()
        for number in config.phone_numbers:
            bot = number.bot_settings()
            if bot.provider == "lex":
                lex_aliases.add(self.format_arn(
                    service="lex", resource="bot-alias", resource_name=f"{bot.bot_id}/{bot.bot_alias_id}"
                ))
            elif bot.provider == "bedrock":
                models.update(self._bedrock_model_arns(bot.model_id))
        if lex_aliases:
            self.conversation.role.add_to_principal_policy(
                iam.PolicyStatement(actions=["lex:RecognizeText"], resources=sorted(lex_aliases))
            )
        if models:
            # Converse is authorised as bedrock:InvokeModel on the model (or inference profile).
            self.conversation.role.add_to_principal_policy(
                iam.PolicyStatement(actions=["bedrock:InvokeModel"], resources=sorted(models))
            )

    def _bedrock_model_arns(self, model_id: str) -> list[str]:
        if model_id.startswith("arn:"):
            return [model_id]  # a provisioned model, a prompt router or a profile named by its ARN
        if model_id.startswith(_INFERENCE_PROFILE_PREFIXES):
            base = model_id.split(".", 1)[1]
            foundation = f"arn:{Aws.PARTITION}:bedrock:*::foundation-model/{base}"
            self.conversation.acknowledge_wildcard(
                f"Resource::arn:<AWS::Partition>:bedrock:*::foundation-model/{base}",
                f"The cross-region inference profile {model_id} routes each request to {base} in any region "
                "of its geography; IAM checks the model in the region that serves it. One model only.",
            )
            return [
                self.format_arn(service="bedrock", resource="inference-profile", resource_name=model_id),
                foundation,
            ]
        return [self.format_arn(service="bedrock", account="", resource="foundation-model", resource_name=model_id)]

