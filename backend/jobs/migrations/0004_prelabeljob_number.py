from django.db import migrations, models


def number_existing(apps, schema_editor):
    # Existing jobs get 1, 2, 3… per project in the order they were made.
    Job = apps.get_model("jobs", "PrelabelJob")
    counters: dict[int, int] = {}
    for job in Job.objects.order_by("project_id", "id").only("id", "project_id"):
        counters[job.project_id] = counters.get(job.project_id, 0) + 1
        Job.objects.filter(pk=job.pk).update(number=counters[job.project_id])


class Migration(migrations.Migration):

    dependencies = [
        ("jobs", "0003_item_dispatched"),
    ]

    operations = [
        migrations.AddField(
            model_name="prelabeljob",
            name="number",
            field=models.PositiveIntegerField(null=True),
        ),
        migrations.RunPython(number_existing, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="prelabeljob",
            name="number",
            field=models.PositiveIntegerField(),
        ),
        migrations.AddConstraint(
            model_name="prelabeljob",
            constraint=models.UniqueConstraint(fields=("project", "number"), name="prelabeljob_unique_number"),
        ),
    ]
