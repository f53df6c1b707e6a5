from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0003_sign_in')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Certification',
            name='external_id',
            field=fields.CharField(null=True, unique=True, max_length=200),
        ),
        ops.AddField(
            model_name='Course',
            name='external_id',
            field=fields.CharField(null=True, unique=True, max_length=200),
        ),
        ops.AddField(
            model_name='Course',
            name='retired_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Enrollment',
            name='ended_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='User',
            name='deactivated_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='User',
            name='external_id',
            field=fields.CharField(null=True, unique=True, max_length=200),
        ),
    ]
