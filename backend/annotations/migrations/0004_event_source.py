"""Every audit event names its source. Old rows: re-scoring events are 'rescore', events with no
actor came from a job ('model'), the rest from a person ('human'; imports were recorded with
their uploader and cannot be told apart now)."""
from django.db import migrations, models

BACKFILL = """
ALTER TABLE annotations_annotationevent DISABLE TRIGGER annotations_event_append_only;
UPDATE annotations_annotationevent SET source = CASE
    WHEN action = 'rescored' THEN 'rescore'
    WHEN actor_id IS NULL THEN 'model'
    ELSE 'human' END;
ALTER TABLE annotations_annotationevent ENABLE TRIGGER annotations_event_append_only;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0003_det_phrase"),
    ]

    operations = [
        migrations.AddField(
            model_name="annotationevent", name="source",
            field=models.CharField(
                choices=[("human", "Human"), ("model", "Model"), ("import", "Import"), ("rescore", "Rescore")],
                default="human", max_length=8,
            ),
            preserve_default=False,
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="annotationevent", name="action",
            field=models.CharField(
                choices=[("created", "Created"), ("updated", "Updated"), ("reviewed", "Reviewed"), ("deleted", "Deleted"),
                         ("rescored", "Rescored"), ("restored", "Restored")],
                max_length=10,
            ),
        ),
        migrations.AddConstraint(
            model_name="annotationevent",
            constraint=models.CheckConstraint(condition=models.Q(source__in=["human", "model", "import", "rescore"]),
                                              name="event_valid_source"),
        ),
    ]
