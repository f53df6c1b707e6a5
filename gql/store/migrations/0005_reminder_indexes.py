from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0004_admin_tooling')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='Enrollment',
            index=Index(fields=['due_at', 'id']),
        ),
        ops.AddIndex(
            model_name='Enrollment',
            index=Index(fields=['last_award_cycle', 'due_at', 'id']),
        ),
    ]
