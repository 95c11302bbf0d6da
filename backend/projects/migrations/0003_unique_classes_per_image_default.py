# New projects match one object per class per image, as the ml CLI does. Existing projects keep
# the value they have: flipping it would change how their next job labels images mid-project.
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("projects", "0002_remove_project_pipeline_settings"),
    ]

    operations = [
        migrations.AlterField(
            model_name="project",
            name="unique_classes_per_image",
            field=models.BooleanField(default=True),
        ),
    ]
