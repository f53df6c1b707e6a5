from tortoise import migrations
from tortoise.migrations import operations as ops
from gql.vocabulary import DeliveryState
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='EnrollmentNotice',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('enrollment', fields.ForeignKeyField('models.Enrollment', source_field='enrollment_id', db_constraint=True, to_field='id', related_name='notices', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharField(max_length=32)),
                ('cycle', fields.IntField()),
                ('noted_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'enrollment_notice', 'app': 'models', 'unique_together': (('enrollment', 'kind', 'cycle'),), 'pk_attr': 'id', 'table_description': 'A reminder already emitted (due soon, overdue, expiring): once per enrollment and cycle.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OutboxEvent',
            fields=[
                ('seq', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('event_id', fields.UUIDField(unique=True)),
                ('type', fields.CharField(max_length=64)),
                ('occurred_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('actor_id', fields.IntField(null=True)),
                ('ordering_key', fields.CharField(max_length=64)),
                ('data', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('fanned_out_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'outbox_event', 'app': 'models', 'indexes': [Index(fields=['fanned_out_at', 'seq']), Index(fields=['occurred_at'])], 'pk_attr': 'seq', 'table_description': 'An event, written in the transaction of the change that caused it (docs/events.md).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Webhook',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('url', fields.CharField(max_length=2000)),
                ('event_types', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('description', fields.TextField(unique=False)),
                ('secret', fields.CharField(max_length=100)),
                ('enabled', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'webhook', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='EventDelivery',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('event', fields.ForeignKeyField('models.OutboxEvent', source_field='event_id', db_constraint=True, to_field='seq', related_name='deliveries', on_delete=OnDelete.CASCADE)),
                ('target', fields.CharField(max_length=200)),
                ('webhook', fields.ForeignKeyField('models.Webhook', source_field='webhook_id', null=True, db_constraint=True, to_field='id', related_name='deliveries', on_delete=OnDelete.CASCADE)),
                ('ordering_key', fields.CharField(max_length=64)),
                ('state', fields.CharEnumField(description='PENDING: PENDING\nDELIVERED: DELIVERED\nDEAD: DEAD', enum_type=DeliveryState, max_length=16)),
                ('attempts', fields.IntField(default=0)),
                ('next_attempt_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('locked_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_attempt_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_status_code', fields.IntField(null=True)),
                ('last_error', fields.TextField(null=True, unique=False)),
                ('delivered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'event_delivery', 'app': 'models', 'unique_together': (('event', 'target'),), 'indexes': [Index(fields=['state', 'next_attempt_at']), Index(fields=['target', 'ordering_key', 'state']), Index(fields=['webhook_id', 'id'])], 'pk_attr': 'id', 'table_description': 'One event on its way to one destination: a plugin ("plugin:<label>") or a webhook.'},
            bases=['Model'],
        ),
    ]
