# Project.pipeline_settings was validated and stored but never read by the engine (issue 11):
# the per-project engine knobs are the typed columns, frozen into each job's settings_snapshot.
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("projects", "0001_initial"),
    ]

    operations = [
        migrations.RemoveField(
            model_name="project",
            name="pipeline_settings",
        ),
    ]
