"""Webhook endpoints through the API (admins only; docs/webhooks.md): `webhooks` with each
endpoint's recent deliveries, `createWebhook` (its signing secret answered once),
`updateWebhook`, `deleteWebhook`, `rotateWebhookSecret` and `redeliverEvent`."""

from __future__ import annotations

from datetime import datetime

import strawberry

from gql.api.connections import Connection, connection_field
from gql.api.context import Info
from gql.api.errors import UserError
from gql.api.fields import described, described_mutation
from gql.api.ids import encode_id, pk_or_unknown
from gql.api.mutations import run_use_case
from gql.api.types import Node
from gql.domain import webhooks
from gql.domain.pages import FIRST_PAGE, PageRequest
from gql.domain.webhooks import (
    KNOWN_EVENT_TYPES,
    AddressPolicy,
    DeliveryRecord,
    DeliveryState,
    WebhookRecord,
    WebhookWithSecret,
)
from gql.settings import Settings

strawberry.enum(
    DeliveryState,
    name="DeliveryState",
    description=(
        "PENDING: not delivered yet (due, being sent, or waiting to be tried again). "
        "DELIVERED: the endpoint answered 2xx. DEAD: every attempt failed; only "
        "redeliverEvent sends it again."
    ),
)


def address_policy(settings: Settings) -> AddressPolicy:
    return AddressPolicy(
        allow_private=settings.webhook_allow_private,
        resolve_timeout_seconds=settings.webhook_timeout_seconds,
    )


@strawberry.type(description="One event on its way to one webhook endpoint, as it stands.")
class WebhookDelivery:
    event_id: strawberry.ID = strawberry.field(
        description=(
            "The event's id: the `id` of the body and the webhook-id header, the same on "
            "every attempt (receivers de-duplicate on it). redeliverEvent takes it."
        )
    )
    event_type: str
    attempt: int = strawberry.field(
        description="Attempts made so far (0: none yet, or none since a redelivery)."
    )
    state: DeliveryState
    status_code: int | None = strawberry.field(
        description=(
            "The HTTP status of the latest attempt; null when it got none (refused address, "
            "connection failed, timed out) or none was made."
        )
    )
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None = strawberry.field(
        description="When it is tried next (PENDING only); null once delivered or dead."
    )
    delivered_at: datetime | None
    error: str | None = strawberry.field(description="Why the latest attempt failed.")

    @classmethod
    def of(cls, row: DeliveryRecord) -> WebhookDelivery:
        return cls(
            event_id=strawberry.ID(str(row.event_id)),
            event_type=row.event_type,
            attempt=row.attempts,
            state=row.state,
            status_code=row.last_status_code,
            last_attempt_at=row.last_attempt_at,
            next_attempt_at=row.next_attempt_at if row.state == DeliveryState.PENDING else None,
            delivered_at=row.delivered_at,
            error=row.last_error,
        )


@strawberry.type(
    description=(
        "A webhook endpoint: events of the types it takes are POSTed to its URL, signed per "
        "Standard Webhooks (docs/webhooks.md). Admins only."
    )
)
class Webhook(Node):
    url: str
    events: list[str] = strawberry.field(
        description="The event types sent here (docs/events.md); empty: every type."
    )
    description: str
    enabled: bool = strawberry.field(
        description="false: events written from now on are not sent here."
    )
    created_at: datetime
    updated_at: datetime
    pk: strawberry.Private[int]

    @classmethod
    def of(cls, row: WebhookRecord) -> Webhook:
        return cls(
            id=strawberry.ID(encode_id("Webhook", row.id)),
            url=row.url,
            events=list(row.event_types),
            description=row.description,
            enabled=row.enabled,
            created_at=row.created_at,
            updated_at=row.updated_at,
            pk=row.id,
        )

    @described("Its newest deliveries first: each event's latest attempt and what comes next.")
    async def recent_deliveries(self, info: Info, first: int | None = 20) -> list[WebhookDelivery]:
        ctx = info.context
        rows = await webhooks.recent_deliveries(
            ctx.viewer, self.pk, first=first, max_page_size=ctx.settings.max_page_size
        )
        return [WebhookDelivery.of(row) for row in rows]


async def webhook_node(info: Info, pk: int) -> Webhook | None:
    """The endpoint for `node(id:)`: null unless the viewer is an admin."""
    row = await webhooks.get_webhook(info.context.viewer, pk)
    return None if row is None else Webhook.of(row)


@strawberry.type
class WebhookQuery:
    @connection_field("Webhook endpoints, oldest first; admins only.")
    async def webhooks(self, info: Info, paging: PageRequest = FIRST_PAGE) -> Connection[Webhook]:
        page = await webhooks.list_webhooks(info.context.viewer, paging=paging)
        return Connection.of(page, [Webhook.of(row) for row in page.items])

    @described("The event types a webhook may take (createWebhook's `events`).")
    def webhook_event_types(self) -> list[str]:
        return list(KNOWN_EVENT_TYPES)


@strawberry.input
class CreateWebhookInput:
    url: str = strawberry.field(
        description=(
            "http:// or https://; refused when its host resolves to a private, loopback or "
            "link-local address (unless CERTGRAPH_WEBHOOK_ALLOW_PRIVATE)."
        )
    )
    events: list[str] | None = strawberry.field(
        default=None, description="The event types to send (webhookEventTypes); none: every type."
    )
    description: str | None = None


@strawberry.input(description="Only the fields given change.")
class UpdateWebhookInput:
    id: strawberry.ID
    url: str | None = None
    events: list[str] | None = strawberry.field(
        default=None, description="The event types to send; [] for every type."
    )
    description: str | None = None
    enabled: bool | None = None


@strawberry.type
class WebhookSecretPayload:
    webhook: Webhook | None = None
    secret: str | None = strawberry.field(
        default=None,
        description=(
            "The signing secret (whsec_…): answered only here, once. Receivers verify the "
            "webhook-signature header with it."
        ),
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class WebhookPayload:
    webhook: Webhook | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class DeleteWebhookPayload:
    deleted_id: strawberry.ID | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RedeliverEventPayload:
    deliveries: list[WebhookDelivery] = strawberry.field(
        default_factory=list, description="The deliveries sent again, now PENDING."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


def _with_secret(created: WebhookWithSecret) -> WebhookSecretPayload:
    return WebhookSecretPayload(webhook=Webhook.of(created.webhook), secret=created.secret)


@strawberry.type
class WebhookMutations:
    @described_mutation(
        "A new webhook endpoint (admins). Its signing secret is in this payload and nowhere "
        "else, ever."
    )
    async def create_webhook(
        self, info: Info, input: CreateWebhookInput
    ) -> WebhookSecretPayload | None:
        return await run_use_case(
            info,
            WebhookSecretPayload,
            lambda viewer: webhooks.create_webhook(
                viewer,
                url=input.url,
                events=input.events,
                description=input.description,
                policy=address_policy(info.context.settings),
            ),
            _with_secret,
        )

    @described_mutation("Change a webhook endpoint (admins): only the fields given change.")
    async def update_webhook(self, info: Info, input: UpdateWebhookInput) -> WebhookPayload | None:
        return await run_use_case(
            info,
            WebhookPayload,
            lambda viewer: webhooks.update_webhook(
                viewer,
                pk_or_unknown(input.id, "Webhook", ["input", "id"]),
                url=input.url,
                events=input.events,
                description=input.description,
                enabled=input.enabled,
                policy=address_policy(info.context.settings),
            ),
            lambda row: WebhookPayload(webhook=Webhook.of(row)),
        )

    @described_mutation(
        "Delete a webhook endpoint and its deliveries (admins); pending ones are not sent."
    )
    async def delete_webhook(self, info: Info, id: strawberry.ID) -> DeleteWebhookPayload | None:
        return await run_use_case(
            info,
            DeleteWebhookPayload,
            lambda viewer: webhooks.delete_webhook(viewer, pk_or_unknown(id, "Webhook", ["id"])),
            lambda pk: DeleteWebhookPayload(deleted_id=strawberry.ID(encode_id("Webhook", pk))),
        )

    @described_mutation(
        "A new signing secret for a webhook endpoint (admins), answered once; the old one "
        "stops signing at once."
    )
    async def rotate_webhook_secret(
        self, info: Info, id: strawberry.ID
    ) -> WebhookSecretPayload | None:
        return await run_use_case(
            info,
            WebhookSecretPayload,
            lambda viewer: webhooks.rotate_webhook_secret(
                viewer, pk_or_unknown(id, "Webhook", ["id"])
            ),
            _with_secret,
        )

    @described_mutation(
        "Send an event again (admins) to every enabled webhook endpoint it went to, or only "
        "to webhookId: back to PENDING, due now, attempts reset, whatever its state. "
        "`eventId` is the event's id (a delivery's eventId, the webhook-id header)."
    )
    async def redeliver_event(
        self, info: Info, event_id: strawberry.ID, webhook_id: strawberry.ID | None = None
    ) -> RedeliverEventPayload | None:
        return await run_use_case(
            info,
            RedeliverEventPayload,
            lambda viewer: webhooks.redeliver_event(
                viewer,
                event_id,
                None if webhook_id is None else pk_or_unknown(webhook_id, "Webhook", ["webhookId"]),
                plugins=info.context.plugins,
            ),
            lambda rows: RedeliverEventPayload(
                deliveries=[WebhookDelivery.of(row) for row in rows]
            ),
        )


__all__ = ["Webhook", "WebhookDelivery", "WebhookMutations", "WebhookQuery", "webhook_node"]
